"""Comparison reports: runs (directories, Optuna storages, W&B projects) -> tables, figures,
findings with confidence intervals, rendered as HTML and Markdown.

Reads only the outputs contract (summary.json, stability.json, the CSV metrics log) and
never imports torch or Lightning, so ``resnorm report`` starts fast and runs anywhere.

The packages follow what flows through a report, and import only the ones before them:

- ``sources``: run directories, Optuna storages, W&B projects -> one runs table
- ``analysis``: statistics over seeds, the summary table, LR sensitivity, probe numbers
- ``claims``: the findings (each claim, the runs it needs, its test and verdict rules)
- ``figures``: matplotlib figures of the runs table and of Optuna studies
- ``render``: the shared wording, index.html, report.md, the W&B workspace

``build`` assembles a ``ReportData`` from them; ``cli`` is ``resnorm report``.
"""
