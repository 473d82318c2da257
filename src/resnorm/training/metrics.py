"""Evaluation metrics, all torchmetrics states so that DDP ranks reduce them correctly."""

from __future__ import annotations

import math

import torch
import torchmetrics
from torch import nn


class ClassificationMetrics(nn.Module):
    """Accuracy and macro precision / recall / F1 over a whole split, plus mean loss."""

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
        self.mean_loss = torchmetrics.MeanMetric()

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        self.metrics.update(logits, target)
        self.mean_loss.update(loss.detach(), weight=target.numel())

    def compute(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self.metrics.compute().items()}
        out["loss"] = float(self.mean_loss.compute())
        return out

    def reset(self) -> None:
        self.metrics.reset()
        self.mean_loss.reset()


class LanguageModelMetrics(nn.Module):
    """Per-token loss (nats), bits per char, perplexity and next-token accuracy."""

    def __init__(self) -> None:
        super().__init__()
        self.mean_loss = torchmetrics.MeanMetric()
        self.mean_acc = torchmetrics.MeanMetric()

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        n = target.numel()
        self.mean_loss.update(loss.detach(), weight=n)
        self.mean_acc.update((logits.argmax(-1) == target).float().mean(), weight=n)

    def compute(self) -> dict[str, float]:
        loss = float(self.mean_loss.compute())
        return {
            "loss": loss,
            "bpc": loss / math.log(2),
            "ppl": math.exp(min(loss, 50.0)),
            "acc": float(self.mean_acc.compute()),
        }

    def reset(self) -> None:
        self.mean_loss.reset()
        self.mean_acc.reset()


# The validation metric each task kind is judged by, and whether higher is better.
MONITOR = {"classification": ("acc", "max"), "lm": ("bpc", "min")}
