"""resnorm: what residual connections and normalization do for Transformers."""

__version__ = "0.1.0"
