"""Where runs come from (run directories, Optuna storages, W&B projects) and the one runs
table every other part of the report reads: a row per run, the same columns whatever the
source."""
