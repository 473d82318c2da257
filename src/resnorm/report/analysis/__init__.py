"""Numbers over the runs table: t-intervals, tests and Holm, the per-cell summary table, LR
sensitivity, and per-run reductions of the per-layer probes."""
