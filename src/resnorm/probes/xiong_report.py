"""The Markdown tables of ``resnorm probe xiong`` (from the dict written to xiong.json)."""

from __future__ import annotations

from typing import Any

VARIANTS = ("post_ln", "pre_ln")


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _mean_sd(mean: float, sd: float | None) -> str:
    return _num(mean) if sd is None else f"{_num(mean)} ± {_num(sd)}"


def _estimate(e: dict[str, Any] | None) -> str:
    if e is None:
        return "n/a"
    ci = e["ci95"]
    return f"{_num(e['mean'])} [{_num(ci[0])}, {_num(ci[1])}]" if ci else f"{_num(e['mean'])}"


def _profile_table(part: dict[str, Any]) -> list[str]:
    """Per-layer mean ± sd over seeds for both variants, then the ln-slope row."""
    rows = ["| layer | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]
    for layer in range(len(part[VARIANTS[0]]["mean"])):
        cells = []
        for v in VARIANTS:
            sd = part[v]["sd"]
            cells.append(_mean_sd(part[v]["mean"][layer], None if sd is None else sd[layer]))
        rows.append(f"| {layer + 1} | " + " | ".join(cells) + " |")
    rows.append(
        "| ln-slope over 0..1 [95% CI] | "
        + " | ".join(_estimate(part[v]["slope"]) for v in VARIANTS)
        + " |"
    )
    rows.append(
        f"\npost_ln − pre_ln ln-slope, paired by seed: {_estimate(part['post_minus_pre_slope'])}"
    )
    return rows


def _header(first: str) -> list[str]:
    return [f"| {first} | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _theorem_table(th: dict[str, Any]) -> list[str]:
    depths = th[VARIANTS[0]]["depths"]
    rows = _header("depth L")
    for j, depth in enumerate(depths):
        last = [th[v]["last_layer"] for v in VARIANTS]
        rows.append(
            _row(str(depth), [_mean_sd(x["mean"][j], x["sd"] and x["sd"][j]) for x in last])
        )
    rows.append(
        _row("exponent p in L^p [95% CI]", [_estimate(th[v]["exponent"]) for v in VARIANTS])
    )
    rows.append(_row("Theorem 1 predicts", [f"{th[v]['predicted_exponent']:g}" for v in VARIANTS]))
    rows += ["", "Local exponent between consecutive depths [95% CI]:", "", *_header("depths")]
    for j, local in enumerate(th[VARIANTS[0]]["local_exponents"]):
        label = f"{local['depths'][0]} → {local['depths'][1]}"
        rows.append(_row(label, [_estimate(th[v]["local_exponents"][j]) for v in VARIANTS]))
    rows += ["", "ln-slope of the whole per-layer profile at each depth [95% CI]:", ""]
    rows += _header("depth L")
    for depth in depths:
        rows.append(_row(str(depth), [_estimate(th[v]["profiles"][str(depth)]["slope"])
                                      for v in VARIANTS]))  # fmt: skip
    return rows


def markdown(result: dict[str, Any]) -> str:
    s, m = result["settings"], result["machine"]
    n = len(result["seeds"])
    head = [
        "# Xiong et al. 2020: gradient of the FFN second weight W² at initialisation",
        "",
        f"Task {result['task']} (token-level LM loss), {s['batches']} training batches per "
        f"seed, {n} init seed(s); each cell: the L2 norm of dLoss/dW^{{2,l}}, mean over the "
        f"batches, then mean ± sd over seeds. Intervals: 95% t over seeds. "
        f"Wall time {result['wall_s']:.0f} s on {m['cpu']} ({m['torch_threads']} threads).",
        "",
        "## Verdicts",
        "",
        "| statement | prediction | measured [95% CI] | reproduces |",
        "|---|---|---|---|",
    ]
    for v in result["verdicts"]:
        yes = "yes" if v["reproduces"] else "no"
        head.append(f"| {v['statement']} | {v['prediction']} | {v['measured']} | {yes} |")
    p, e = result["paper_setting"], result["embedded"]
    body = [
        "",
        f"## Paper setting (Fig. 3): d={p['dim']}, {p['depth']} layers, {p['activation']}",
        "",
        *_profile_table(p),
        "",
        f"## Theorem 1: last layer's W² gradient against depth (d={s['dim']}, {s['activation']})",
        "",
        *_theorem_table(result["theorem1"]),
        "",
        f"## Embedded setting: d={e['dim']}, {e['depth']} layers, {e['activation']}",
        "",
        *_profile_table(e),
    ]
    return "\n".join(head + body) + "\n"
