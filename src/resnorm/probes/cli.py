"""``resnorm probe xiong [--out DIR] [--batches N] [--seeds K] [--depths 2,6,12] [--dim D]``."""

from __future__ import annotations

import argparse
from pathlib import Path

HEADS = 4  # the paper setting's heads (Settings.heads)


def _depths(text: str) -> tuple[int, ...]:
    try:
        depths = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--depths={text!r}: give integers like 2,6,12,24"
        ) from None
    if not depths or min(depths) < 1 or len(set(depths)) != len(depths):
        raise argparse.ArgumentTypeError(f"--depths={text!r}: distinct positive integers")
    return depths


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="resnorm probe",
        description="Measurements of a paper's statement in the paper's own setting. xiong: "
        "per-layer gradient norm of the FFN second weight at init, Post-LN vs Pre-LN "
        "(Xiong et al. 2020, Fig. 3 and Theorem 1), on task nlp_charlm.",
    )
    p.add_argument("which", choices=["xiong"])
    p.add_argument("--out", default="outputs/probes/xiong", help="writes xiong.json, xiong.md")
    p.add_argument("--batches", type=_positive, default=20, help="batches averaged per seed")
    p.add_argument("--seeds", type=_positive, default=3, help="init seeds 0..K-1")
    p.add_argument("--depths", type=_depths, default=(2, 6, 12, 24), help="Theorem 1 sweep")
    p.add_argument("--dim", type=_positive, default=256, help="model width d (paper setting)")
    p.add_argument("--layers", type=_positive, default=6, help="depth of the Fig. 3 setting")
    a = p.parse_args(argv)
    if a.dim % HEADS:
        p.error(f"--dim={a.dim} must be a multiple of the {HEADS} attention heads")

    from resnorm.probes.xiong_run import MD_NAME, Settings, run  # lazy: imports Lightning

    settings = Settings(
        dim=a.dim,
        heads=HEADS,
        layers=a.layers,
        depths=tuple(sorted(a.depths)),
        seeds=a.seeds,
        batches=a.batches,
    )
    run(a.out, settings)
    print((Path(a.out) / MD_NAME).read_text())
    return 0
