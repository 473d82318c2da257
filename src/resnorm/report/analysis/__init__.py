"""Numbers over the runs table: bootstrap intervals, the per-cell summary table, LR
sensitivity, and per-run reductions of the per-layer probes."""
