"""Training never loads matplotlib: only ``resnorm report`` draws.

Lightning imports torchmetrics, and torchmetrics imports ``matplotlib.pyplot`` at import
whenever matplotlib is installed (for ``Metric.plot``, which resnorm never calls). That
costs every training process the import and, on a fresh install, puts matplotlib's
"generated new fontManager" log line into the run's output. ``keep_matplotlib_out`` makes
torchmetrics load as it does where matplotlib is absent, a mode torchmetrics supports
(matplotlib is an optional extra of it): its one availability flag reads False.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

FLAGS_MODULE = "torchmetrics.utilities.imports"  # defines _MATPLOTLIB_AVAILABLE


class _FlagOffLoader(importlib.abc.Loader):
    """torchmetrics' own loader, plus the flag set False before any other module reads it."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        module._MATPLOTLIB_AVAILABLE = False  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:  # get_source etc., for tracebacks
        return getattr(self.inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != FLAGS_MODULE:
            return None
        sys.meta_path.remove(self)  # one module, once
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FlagOffLoader(spec.loader)
        return spec


def keep_matplotlib_out() -> None:
    """Call before Lightning or torchmetrics is imported; later, it changes nothing."""
    if "torchmetrics" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
