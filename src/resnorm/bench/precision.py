"""bf16 autocast vs fp32 on one fixed batch: is the fast path still the same model?

Reports the relative error of the encoder output and of the loss, and the largest
relative difference of any parameter's gradient norm, for each norm position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resnorm.models import LanguageModel


def run(device: str = "cuda") -> list[dict[str, object]]:
    dev = torch.device(device)
    rows = []
    for position in ("pre", "post", "sandwich", "none"):
        torch.manual_seed(0)
        model = LanguageModel(256, 128, dim=256, depth=6, heads=8, norm_position=position)
        model = model.to(dev)
        x = torch.randint(0, 256, (8, 128), device=dev)
        out, grads = {}, {}
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            model.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float().reshape(-1, 256), x.reshape(-1))
            loss.backward()
            out[name] = (logits.float().detach(), loss.item())
            grads[name] = {n: p.grad.norm().item() for n, p in model.named_parameters()}
        ref, fast = out["fp32"], out["bf16"]
        grad_rel = max(abs(grads["bf16"][n] - g) / max(g, 1e-12) for n, g in grads["fp32"].items())
        rows.append(
            {
                "norm_position": position,
                "logits rel err": ((fast[0] - ref[0]).norm() / ref[0].norm()).item(),
                "loss fp32": ref[1],
                "loss bf16": fast[1],
                "max grad-norm rel diff": grad_rel,
            }
        )
    return rows
