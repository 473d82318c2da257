"""A study's results as one compact file that travels between machines: ``resnorm export``
writes it (every run's summary, per-step metrics and probe records; no checkpoints),
``resnorm report`` reads it like the run directories, and ``resnorm import`` seeds a study
directory from it so a relaunch elsewhere runs only what the file lacks."""
