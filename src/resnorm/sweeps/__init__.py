"""The Optuna sweeper behind ``hydra/sweeper=resnorm_optuna``: search spaces, samplers,
storages, trial liveness, and what a finished job means for its trial.

Above ``training`` (it launches jobs through Hydra); what a job does for itself (resume,
the study index, pruning) is in ``resnorm.jobs``.
"""
