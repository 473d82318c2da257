"""Benchmarks behind ``resnorm bench``: each prints ratios measured side by side in one run."""

# The benches ``resnorm bench`` runs, in the order its help lists them (torch-free, so that
# ``resnorm --help`` can name them without loading anything).
BENCHES = (
    "block", "harness", "mfu", "sweep", "precision", "wait_policy", "optimizer", "pack",
    "norm", "block_cost",
)  # fmt: skip
