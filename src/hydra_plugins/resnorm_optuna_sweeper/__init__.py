"""resnorm's Hydra sweeper driving Optuna (>= 4) through ask/tell; see resnorm_optuna_sweeper."""
