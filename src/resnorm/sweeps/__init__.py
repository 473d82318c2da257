"""Studies and sweeps: run keys, resume and skip, the study index, Optuna glue."""
