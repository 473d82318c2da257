"""Comparison reports: runs (directories, Optuna storages, W&B projects) -> tables, figures,
findings with confidence intervals, rendered as HTML and Markdown.

Reads only the outputs contract (summary.json, stability.json, the CSV metrics log) and
never imports torch or Lightning, so ``resnorm report`` starts fast and runs anywhere.
"""
