"""Lightning training: the module, optimizers and schedules, loggers, and one job's run."""
