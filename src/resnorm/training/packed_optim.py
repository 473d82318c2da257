"""AdamW for a pack: k runs whose parameters are stacked on a leading member dimension.

Every member is updated by torch's own AdamW kernel (fused where it exists) applied to its
views ``p[i]``, ``grad[i]``, ``state[i]``, with its own hyper-parameters and LR schedule, so
member i computes bitwise what ``build_optimizer`` (AdamW + LambdaLR) computes for it
alone. The schedule lives in the optimizer: a member's LR at its n-th step (0-based) is
``lr * lr_factor(n, ...)``, the value LambdaLR hands the n-th step of a solo run. A frozen
(diverged) member takes no update at all while the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.adam import adam

from resnorm.member_config import OptimOptions
from resnorm.training.optim import lr_factor

# the defaults of the options a member's config may leave out (clipping is the module's)
DEFAULTS: dict[str, Any] = {k: v for k, v in OptimOptions.defaults().items() if k != "grad_clip"}
MEMBER_OPTIONS = ("lr", "weight_decay", *DEFAULTS)


def _per_member(name: str, value: Any, k: int) -> list[Any]:
    """One value per member: a sequence of k values, or one value for all of them."""
    single_pair = name == "betas" and all(isinstance(v, int | float) for v in value)
    if isinstance(value, str) or not isinstance(value, Sequence) or single_pair:
        return [value] * k
    if len(value) != k:
        raise ValueError(f"optim.{name} has {len(value)} values for a pack of {k} members")
    return list(value)


class PackedAdamW(torch.optim.Optimizer):
    """AdamW over (k, ...) parameters with per-member options, schedule, steps and freezing.

    The groups are build_optimizer's: weight decay on the parameters whose per-member
    shape has 2 or more dimensions, none on the rest. State tensors are (k, ...); ``step``
    is (k,) per parameter, as torch keeps one step tensor per parameter.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        *,
        lr: float | Sequence[float],
        weight_decay: float | Sequence[float],
        betas: Sequence[float] | Sequence[Sequence[float]] = DEFAULTS["betas"],
        eps: float | Sequence[float] = DEFAULTS["eps"],
        warmup_steps: int | Sequence[int] = DEFAULTS["warmup_steps"],
        schedule: str | Sequence[str] = DEFAULTS["schedule"],
        min_lr_ratio: float | Sequence[float] = DEFAULTS["min_lr_ratio"],
        total_steps: int = 1,
        fused: bool | None = None,
    ) -> None:
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("PackedAdamW got no trainable parameter")
        k = params[0].shape[0] if params[0].ndim else 0
        odd = [tuple(p.shape) for p in params if p.ndim == 0 or p.shape[0] != k]
        if k < 1 or odd:
            raise ValueError(
                "every parameter of a pack needs the same leading member dimension; "
                f"the first is {tuple(params[0].shape)}, then {odd[:3]}"
            )
        self.k, self.total_steps = k, total_steps
        given = {
            "lr": lr, "weight_decay": weight_decay, "betas": betas, "eps": eps,
            "warmup_steps": warmup_steps, "schedule": schedule, "min_lr_ratio": min_lr_ratio,
        }  # fmt: skip
        self.options = {name: _per_member(name, value, k) for name, value in given.items()}
        self.options["betas"] = [tuple(b) for b in self.options["betas"]]
        for i in range(k):  # each member's options, validated as its solo run's are
            OptimOptions(**{name: values[i] for name, values in self.options.items()})
        # build_optimizer's rule: the fused kernel on CUDA and CPU, else torch's foreach loop
        on_fused_device = params[0].device.type in ("cuda", "cpu")
        groups = [
            {"params": [p for p in params if p.ndim - 1 >= 2], "decay": True},
            {"params": [p for p in params if p.ndim - 1 < 2], "decay": False},
        ]
        # "fused"/"capturable" tell torch's load_state_dict where the step tensors live
        defaults = {"fused": on_fused_device if fused is None else fused, "capturable": False}
        super().__init__(groups, defaults)
        self.steps = [0] * k  # optimizer steps each member has taken (its schedule position)
        self._frozen = [False] * k
        # the LR of each member's last step (for logging); before the first, of the first
        self.last_lrs = [self.scheduled_lr(i) for i in range(k)]
        self._view_cache: dict[int, tuple[list[int], list[list[list[Any]]]]] = {}

    @classmethod
    def from_member_configs(
        cls, params: Iterable[nn.Parameter], configs: Sequence[Mapping[str, Any]], total_steps: int
    ) -> PackedAdamW:
        """One ``optim`` mapping per member, with the keyword options of ``build_optimizer``."""
        full = [{**DEFAULTS, **cfg} for cfg in configs]
        for cfg in full:
            unknown, missing = set(cfg) - {*MEMBER_OPTIONS, "fused"}, set(MEMBER_OPTIONS) - set(cfg)
            if unknown or missing:
                raise ValueError(
                    f"optim options unknown: {sorted(unknown)}, missing: {sorted(missing)}"
                )
        fused = {cfg.get("fused") for cfg in full}
        if len(fused) > 1:
            raise ValueError("optim.fused must be the same for every member of a pack")
        options = {name: [cfg[name] for cfg in full] for name in MEMBER_OPTIONS}
        return cls(params, **options, total_steps=total_steps, fused=fused.pop())

    def scheduled_lr(self, i: int) -> float:
        """The LR member i's next step uses (LambdaLR's ``base_lr * lambda(step)``)."""
        o = self.options
        factor = lr_factor(
            self.steps[i], o["warmup_steps"][i], self.total_steps, o["schedule"][i],
            o["min_lr_ratio"][i],
        )  # fmt: skip
        return o["lr"][i] * factor

    @property
    def frozen(self) -> tuple[bool, ...]:
        return tuple(self._frozen)

    def freeze(self, i: int) -> None:
        """Member i takes no further update: its parameters and state stay bitwise as they
        are, whatever its gradients hold (NaN/inf included)."""
        if not 0 <= i < self.k:
            raise IndexError(f"member {i} is not in a pack of {self.k}")
        self._frozen[i] = True

    def _state(self, p: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The parameter with its exp_avg, exp_avg_sq and step, all (k, ...)."""
        state = self.state[p]
        if not state:  # lazily, like torch's AdamW: a parameter never given a gradient has none
            fused = self.defaults["fused"]
            # torch keeps the step on the parameter's device for the fused kernel, else on CPU
            dtype = torch.float32 if fused else torch.get_default_dtype()
            state["step"] = torch.zeros(self.k, dtype=dtype, device=p.device if fused else "cpu")
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return p, state["exp_avg"], state["exp_avg_sq"], state["step"]

    def _member_views(self, index: int, params: list[torch.Tensor]) -> list[list[list[Any]]]:
        """[member][param, exp_avg, exp_avg_sq, step] -> the views of ``params``' tensors.

        Cached per group while the tensors stay where they are (their addresses are the
        key): taking 4k views per parameter on every step costs as much as a small
        model's update. A tensor replaced (a load, a move) or a changed set of parameters
        with gradients changes the key.
        """
        tensors = [self._state(p) for p in params]
        key = [t.data_ptr() for ts in tensors for t in ts]
        cached = self._view_cache.get(index)
        if cached is None or cached[0] != key:
            per_kind = [
                list(zip(*(ts[n].unbind(0) for ts in tensors), strict=True)) for n in range(4)
            ]
            members = [[list(kind[i]) for kind in per_kind] for i in range(self.k)]
            self._view_cache[index] = cached = (key, members)
        return cached[1]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        active = [i for i in range(self.k) if not self._frozen[i]]
        lrs = {i: self.scheduled_lr(i) for i in active}
        fused, o = self.defaults["fused"], self.options
        for index, group in enumerate(self.param_groups):
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not with_grad:
                continue
            members = self._member_views(index, with_grad)
            grads = list(zip(*(p.grad.unbind(0) for p in with_grad), strict=True))
            for i in active:
                (p, m, v, s), g = members[i], list(grads[i])
                beta1, beta2 = o["betas"][i]
                decay = o["weight_decay"][i] if group["decay"] else 0.0
                adam(
                    p, g, m, v, [], s, foreach=not fused, fused=fused,
                    decoupled_weight_decay=True, amsgrad=False, beta1=beta1, beta2=beta2,
                    lr=lrs[i], weight_decay=decay, eps=o["eps"][i], maximize=False,
                )  # fmt: skip
        for i in active:
            self.last_lrs[i] = lrs[i]
            self.steps[i] += 1
        return loss

    # torch's optimizers pickle (and deepcopy) only defaults, state and groups
    _PICKLED = ("k", "total_steps", "options", "steps", "_frozen", "last_lrs")

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), **{name: getattr(self, name) for name in self._PICKLED}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # also what load_state_dict ends with
        self._view_cache = {}

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["members"] = {
            "steps": list(self.steps), "frozen": list(self._frozen), "last_lrs": list(self.last_lrs)
        }  # fmt: skip
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        members = state_dict["members"]
        if len(members["steps"]) != self.k:
            raise ValueError(f"the state is of a pack of {len(members['steps'])}, not {self.k}")
        super().load_state_dict({key: v for key, v in state_dict.items() if key != "members"})
        self.steps = [int(s) for s in members["steps"]]
        self._frozen = [bool(f) for f in members["frozen"]]
        self.last_lrs = [float(lr) for lr in members["last_lrs"]]


def _as_solo_grad(g: torch.Tensor) -> torch.Tensor:
    """A member's gradient view as the norm kernel would see the solo gradient.

    CUDA's foreach norm sums a 16-byte aligned tensor in another order than a misaligned
    one. A solo gradient is always aligned; the view of member i > 0 of a parameter whose
    per-member size is not a multiple of 16 bytes is not, so that one is read from a copy.
    """
    return g.clone() if g.is_cuda and g.data_ptr() % 16 else g


@torch.no_grad()
def clip_member_grads_(
    params: Iterable[torch.Tensor],
    max_norms: Sequence[float | None],
    active: Sequence[bool] | None = None,
) -> list[torch.Tensor | None]:
    """Per member, the global gradient norm before clipping, and clipping to ``max_norms[i]``.

    The norm and the clip of member i are ``clip_grad_norm_(..., foreach=True)`` of its solo
    run, on the views ``grad[i]``. A member whose max norm is None gets its norm (the
    stability monitor reads it) and no clipping; an inactive (frozen) member gets None and
    its gradients are left alone. The norms are 0-dim device tensors: no host sync.
    """
    grads = [p.grad.unbind(0) for p in params if p.grad is not None]
    if grads and len(grads[0]) != len(max_norms):
        raise ValueError(f"{len(max_norms)} max norms for a pack of {len(grads[0])} members")
    norms: list[torch.Tensor | None] = []
    for i, max_norm in enumerate(max_norms):
        if not grads or (active is not None and not active[i]):
            norms.append(None)
            continue
        member = [g[i] for g in grads]
        norm = torch.nn.utils.get_total_norm([_as_solo_grad(g) for g in member], foreach=True)
        if max_norm is not None:
            # torch.nn.utils.clip_grads_with_norm_, which takes parameters, on gradient views
            coef = torch.clamp(float(max_norm) / (norm + 1e-6), max=1.0)
            torch._foreach_mul_(member, coef.to(member[0].device))
        norms.append(norm)
    return norms
