"""Benchmarks behind ``resnorm bench``: each prints ratios measured side by side in one run."""
