"""What one training job does for itself within a study: skip or resume by run key,
refresh the study index, and report to its Optuna trial (pruning).

Below ``training`` (which imports it) and below the sweeper in ``resnorm.sweeps`` (which
launches jobs): nothing here imports either, so the arrows run one way.
"""
