"""Evaluation metrics: torchmetrics for classification, token-weighted sums for LM."""

from __future__ import annotations

import math

import torch
import torchmetrics
from torch import nn


class ClassificationMetrics(nn.Module):
    """Accuracy and macro precision / recall / F1 over a whole split."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        kw = {"task": "multiclass", "num_classes": num_classes}
        self.metrics = torchmetrics.MetricCollection(
            {
                "acc": torchmetrics.Accuracy(**kw, average="micro"),
                "precision_macro": torchmetrics.Precision(**kw, average="macro"),
                "recall_macro": torchmetrics.Recall(**kw, average="macro"),
                "f1_macro": torchmetrics.F1Score(**kw, average="macro"),
            }
        )
        self.register_buffer("loss_sum", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64), persistent=False)

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        self.metrics.update(logits, target)
        self.loss_sum += loss.detach().double() * target.numel()
        self.count += target.numel()

    def compute(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self.metrics.compute().items()}
        out["loss"] = float(self.loss_sum / self.count.clamp(min=1))
        return out

    def reset(self) -> None:
        self.metrics.reset()
        self.loss_sum.zero_()
        self.count.zero_()


class LanguageModelMetrics(nn.Module):
    """Per-token loss (nats), bits per char, perplexity and next-token accuracy."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("loss_sum", "correct", "count"):
            self.register_buffer(name, torch.zeros((), dtype=torch.float64), persistent=False)

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        n = target.numel()
        self.loss_sum += loss.detach().double() * n
        self.correct += (logits.argmax(-1) == target).sum()
        self.count += n

    def compute(self) -> dict[str, float]:
        loss = float(self.loss_sum / self.count.clamp(min=1))
        return {
            "loss": loss,
            "bpc": loss / math.log(2),
            "ppl": math.exp(min(loss, 50.0)),
            "acc": float(self.correct / self.count.clamp(min=1)),
        }

    def reset(self) -> None:
        for b in (self.loss_sum, self.correct, self.count):
            b.zero_()


# The validation metric each task kind is judged by, and whether higher is better.
MONITOR = {"classification": ("acc", "max"), "lm": ("bpc", "min")}
