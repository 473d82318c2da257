"""Figures (PNG + SVG) drawn with matplotlib's Agg backend from the runs table, each run's
own arrays and Optuna studies."""
