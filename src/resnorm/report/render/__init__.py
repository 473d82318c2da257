"""What a report says and the files that say it: index.html, report.md, and the W&B
workspace spec."""
