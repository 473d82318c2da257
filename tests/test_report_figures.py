"""Every report figure keeps its text on the canvas and renders math, for many variants with
long names and a name holding "$"; the curves over training (validation metric, stability
quantities, LR schedule) come from each run's CSV log."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resnorm.outputs import METRICS_CSV, SUMMARY
from resnorm.report.figures.base import tex_safe

ENV_KEYS = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
DOLLAR = "cost$ln"  # a name with a literal dollar: text, never TeX
NAMES = (
    "bert",
    "deepnorm",
    "dyt_pre",
    "uncentered_ln",
    "unscaled_attn",
    "unscaled_attn_h1",
    "post_ln_warm",
    "rmsnorm_pre_qknorm",
    "sandwich_ln_long_name",
    "no_norm_residual_off",
    "pre_ln_relu_variant",
    "admin_like_init",
    DOLLAR,
)
# (depth, lr, seed, warmup template) of each variant's copies: two depths, an LR grid of
# three at the deeper one, two seeds at the base cell
CELLS = [(2, 1e-3, 0, 50), (2, 1e-3, 1, 50), (4, 1e-3, 0, 50), (4, 1e-3, 1, 50),
         (4, 3e-3, 0, 50), (4, 1e-2, 0, 50)]  # fmt: skip
MARGIN = 2.0  # points beyond the canvas a glyph may reach (estimates are not exact)
SVG = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------- SVG geometry


def _parse_transform(text: str | None) -> np.ndarray:
    """An SVG transform attribute as a 3x3 matrix (translate, scale, rotate, matrix, skew)."""
    m = np.eye(3)
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", text or ""):
        v = [float(a) for a in re.split(r"[\s,]+", args.strip()) if a]
        if name == "translate":
            t = np.array([[1, 0, v[0]], [0, 1, v[1] if len(v) > 1 else 0], [0, 0, 1]])
        elif name == "scale":
            t = np.diag([v[0], v[1] if len(v) > 1 else v[0], 1])
        elif name == "rotate":
            a = math.radians(v[0])
            c, s = math.cos(a), math.sin(a)
            t = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
            if len(v) == 3:  # rotate(a cx cy) = translate(cx cy) rotate(a) translate(-cx -cy)
                t = _parse_transform(f"translate({v[1]} {v[2]})") @ t
                t = t @ _parse_transform(f"translate({-v[1]} {-v[2]})")
        elif name == "matrix":
            t = np.array([[v[0], v[2], v[4]], [v[1], v[3], v[5]], [0, 0, 1]])
        elif name == "skewX":
            t = np.array([[1, math.tan(math.radians(v[0])), 0], [0, 1, 0], [0, 0, 1]])
        elif name == "skewY":
            t = np.array([[1, 0, 0], [math.tan(math.radians(v[0])), 1, 0], [0, 0, 1]])
        else:
            raise ValueError(f"unknown SVG transform {name}")
        m = m @ t
    return m


def _style(el: ET.Element, key: str, inherited: str) -> str:
    found = re.search(rf"{key}\s*:\s*([^;]+)", el.get("style", ""))
    return found.group(1).strip() if found else el.get(key, inherited)


def svg_texts(path: Path) -> tuple[tuple[float, float], list[tuple[str, np.ndarray]]]:
    """The canvas (width, height) and, per text run (a <text> or each of its <tspan>s), its
    string and the corners of its estimated box in canvas coordinates."""
    root = ET.parse(path).getroot()
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    out: list[tuple[str, np.ndarray]] = []

    def box(el, text, m, size, anchor):
        x, y = float(el.get("x", 0)), float(el.get("y", 0))
        w = 0.5 * size * len(text)  # narrower than DejaVu Sans's average glyph: an underestimate
        x0 = x - w * {"start": 0.0, "middle": 0.5, "end": 1.0}.get(anchor, 0.0)
        corners = np.array([[x0, y - 0.7 * size, 1], [x0 + w, y - 0.7 * size, 1],
                            [x0, y, 1], [x0 + w, y, 1]]).T  # fmt: skip
        out.append((text, (m @ corners)[:2].T))

    def walk(el, m, size, anchor):
        m = m @ _parse_transform(el.get("transform"))
        size_text = _style(el, "font-size", "")
        size = float(re.match(r"[\d.]+", size_text).group()) if size_text else size
        anchor = _style(el, "text-anchor", anchor)
        if el.tag == f"{SVG}text":
            spans = el.findall(f"{SVG}tspan")
            for span in spans:
                s = _style(span, "font-size", "")
                box(span, span.text or "", m, float(re.match(r"[\d.]+", s).group()) if s
                    else size, _style(span, "text-anchor", anchor))  # fmt: skip
            if not spans:
                box(el, el.text or "", m, size, anchor)
            return
        for child in el:
            walk(child, m, size, anchor)

    walk(root, np.eye(3), 10.0, "start")
    return (width, height), out


def text_problems(path: Path) -> list[str]:
    """Every text run outside the canvas, and every run that shows TeX source."""
    (width, height), texts = svg_texts(path)
    bad = []
    for text, corners in texts:
        xs, ys = corners[:, 0], corners[:, 1]
        if (
            xs.min() < -MARGIN
            or xs.max() > width + MARGIN
            or ys.min() < -MARGIN
            or (ys.max() > height + MARGIN)
        ):
            where = f"x {xs.min():.1f}..{xs.max():.1f}, y {ys.min():.1f}..{ys.max():.1f}"
            bad.append(f"{path.name}: {text!r} at {where} outside {width:g} x {height:g}")
        if "mathdefault" in text or "\\" in text or ("$" in text and DOLLAR not in text):
            bad.append(f"{path.name}: TeX source shown as text: {text!r}")
    return bad


def test_svg_geometry_follows_nested_transforms(tmp_path):
    svg = tmp_path / "t.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="100pt" height="50pt" '
        'viewBox="0 0 100 50"><g transform="translate(90 10)"><g transform="matrix(1 0 0 1 '
        '5 0)"><text style="font-size: 10px" x="0" y="20">inside?</text></g></g>'
        '<text x="20" y="40" transform="rotate(-90 20 40)" style="font-size: 10px">up</text>'
        "</svg>"
    )
    (w, h), texts = svg_texts(svg)
    assert (w, h) == (100, 50)
    (t1, c1), (t2, c2) = texts
    assert t1 == "inside?" and c1[:, 0].min() == pytest.approx(95) and c1[:, 1].max() == 30
    # rotated -90 degrees about (20, 40): the text runs upward from (20, 40)
    assert t2 == "up" and c2[:, 1].min() == pytest.approx(30) and c2[:, 0].max() <= 20 + 1e-9
    assert len(text_problems(svg)) == 1  # "inside?" spills past the right edge


def test_tex_safe_escapes_dollars_only():
    assert tex_safe("cost$ln") == r"cost\$ln"
    assert tex_safe("pre_ln") == "pre_ln"
    assert tex_safe("$a$") == r"\$a\$"


def test_a_name_that_looks_like_tex_is_drawn_as_written(tmp_path):
    from matplotlib.figure import Figure

    from resnorm.report.figures.base import save, shared_legend

    name = "a $\\notacommand$ b"  # even dollars: TeX to matplotlib, were it not escaped
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([1, 10], [1, 100], label=tex_safe(name))
    ax.set_yscale("log")
    ax.set_title(tex_safe(name))
    shared_legend(fig, [ax])
    save(fig, tmp_path, name, "s", "t", "c")
    svg = next(tmp_path.glob("*.svg"))
    texts = [t for t, _ in svg_texts(svg)[1]]
    assert texts.count(name) == 2  # title and legend entry, dollars and backslash as written
    assert not [t for t in texts if "mathdefault" in t]


def test_train_log_reads_the_stability_columns_of_a_csv_log(tmp_path):
    from resnorm.report.sources.run_dirs import read_curves

    csv = tmp_path / "metrics.csv"
    cols = ["step", "train/loss", "val/acc", "stability/grad_norm", "train/lr",
            "stability/update_ratio/layer9", "stability/update_ratio/layer10",
            "stability/residual_rms/layer9", "stability/residual_rms/layer10", "other"]  # fmt: skip
    rows = [
        [10, "", "", 2.0, "", "", "", "", "", 1],
        [10, "", "", "", "", 0.01, 0.03, 1.5, 2.5, 1],  # same step, a row of its own
        [9, 2.3, "", "", 1e-4, "", "", "", "", 1],
        [19, "", 0.5, "", "", "", "", "", "", 1],
        [20, "", "", "inf", "", "", "", "", "", 1],  # a diverging run's non-finite norm
    ]
    csv.write_text("\n".join(",".join(map(str, r)) for r in [cols, *rows]))
    loss, val, log = read_curves(csv, "val/acc")
    assert list(loss["step"]) == [9] and list(val["val/acc"]) == [0.5]
    assert set(log.columns) == {"step", "grad_norm", "lr", "update_ratio", "residual_rms"}
    at10 = log.set_index("step").loc[10]
    assert at10["grad_norm"] == 2.0 and at10["update_ratio"] == 0.03  # max over layers
    assert at10["residual_rms"] == 2.5  # the last layer: layer10, not layer9
    assert log.set_index("step").loc[9, "lr"] == 1e-4 and 20 not in set(log["step"])


# ---------------------------------------------------------------- a study of many variants


def _train(root: Path) -> list[Path]:
    """Two real tiny runs (warmup 50 and 0) whose directories the study copies."""
    env = {**__import__("os").environ, **ENV_KEYS}
    cmd = [sys.executable, "-m", "resnorm.cli", "train", "-m", "task=image_digits",
           "model.depth=2", "model.dim=32", "trainer.max_steps=60", "task.val_every=20",
           "stability.probe_every=10", "optim.warmup_steps=50,0",
           f"hydra.sweep.dir={root / 'real'}"]  # fmt: skip
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = sorted(p.parent for p in (root / "real").rglob(SUMMARY))
    assert len(runs) == 2
    return sorted(runs, key=lambda r: -json.loads((r / SUMMARY).read_text())["warmup_steps"])


def _copy(template: Path, dest: Path, name: str, i: int, depth: int, lr: float, seed: int):
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns("checkpoints"))
    s = json.loads((dest / SUMMARY).read_text())
    model = {**s["model"], "depth": depth, "norm_eps": 1e-5 * (1 + (i + 1) / 1000)}
    s.update(variant=name, model=model, depth=depth, seed=seed, lr=lr,
             run_key=f"{name}-{depth}-{lr}-{seed}-{s['warmup_steps']}")  # fmt: skip
    s.pop("variant_overrides", None)  # named by its label: no conf/variant has its norm_eps
    s["config"]["model"].update(variant=name, depth=depth)
    s["config"]["optim"]["lr"] = lr
    (dest / SUMMARY).write_text(json.dumps(s))
    csv = pd.read_csv(dest / METRICS_CSV)  # without train/lr, whether or not training logs it
    csv.drop(columns=["train/lr"], errors="ignore").to_csv(dest / METRICS_CSV, index=False)


def _with_lr_column(run: Path) -> None:
    """Add train/lr on every train/loss row, as the trainer logs it (warmup, then cosine)."""
    s = json.loads((run / SUMMARY).read_text())
    csv = pd.read_csv(run / METRICS_CSV)
    steps = csv["step"].astype(float)
    warm, total, lr = s["warmup_steps"], s["steps"], s["lr"]
    frac = np.clip((steps - warm) / max(total - warm, 1), 0, 1)
    sched = np.where(steps < warm, lr * (steps + 1) / max(warm, 1),
                     lr * 0.5 * (1 + np.cos(np.pi * frac)))  # fmt: skip
    csv["train/lr"] = np.where(csv["train/loss"].notna(), sched, np.nan)
    csv.to_csv(run / METRICS_CSV, index=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("figures")
    warm, cold = _train(root)
    base = root / "study"
    for i, name in enumerate(NAMES):
        for depth, lr, seed, _ in CELLS:
            _copy(warm, base / f"{i:02d}_d{depth}_lr{lr:g}_s{seed}", name, i, depth, lr, seed)
    for i, name in enumerate(NAMES[:3]):  # no warmup: the LR schedule figure has two shapes
        _copy(cold, base / f"{i:02d}_d4_cold", name, i, 4, 1e-3, 0)
    return base


def _report(src: Path, out: Path) -> list[Path]:
    from resnorm.cli import main

    assert main(["report", str(src), "--out", str(out), "--title", "figures"]) == 0
    return sorted(out.glob("*.svg"))


@pytest.mark.slow
def test_every_figure_keeps_text_on_canvas_and_renders_math(study, tmp_path):
    svgs = _report(study, tmp_path / "rep")
    problems = [p for svg in svgs for p in text_problems(svg)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    names = {p.stem for p in svgs}
    assert {"depth", "grad_init", "rank_collapse", "lr_sweep", "stability_depth"} <= names
    assert {"val_curves_image_digits", "stability_curves_image_digits"} <= names
    assert "lr_schedule_image_digits" not in names  # no train/lr column in these logs
    # the literal-dollar name shows as plain text in every legend and label naming variants
    for stem in ("depth", "grad_init", "lr_sweep", "stability_depth", "val_curves_image_digits"):
        texts = [t for t, _ in svg_texts(tmp_path / "rep" / f"{stem}.svg")[1]]
        assert DOLLAR in texts, stem
        assert all(n in texts for n in NAMES), (stem, set(NAMES) - set(texts))
    # log-scale ticks render as mathtext: a "10" with an exponent, no TeX source
    ticks = "".join(t for t, _ in svg_texts(tmp_path / "rep" / "grad_init.svg")[1])
    assert (
        "10" in ticks
        and "mathdefault"
        not in (tmp_path / "rep" / "grad_init.svg").read_text().replace("<!--", "").split("-->")[-1]
    )


@pytest.mark.slow
def test_curves_over_training_are_in_both_renderings(study, tmp_path):
    runs = sorted(p.parent for p in study.rglob(SUMMARY))
    for run in runs:
        _with_lr_column(run)
    out = tmp_path / "rep"
    svgs = {p.stem for p in _report(study, out)}
    assert "lr_schedule_image_digits" in svgs
    problems = [p for stem in svgs for p in text_problems(out / f"{stem}.svg")]
    assert not problems, "\n".join(problems)
    md, html = (out / "report.md").read_text(), (out / "index.html").read_text()
    for stem in ("val_curves_image_digits", "stability_curves_image_digits",
                 "lr_schedule_image_digits"):  # fmt: skip
        assert f"({stem}.png)" in md and f'id="fig-{stem}"' in html
    # the stability figure has one panel per quantity the runs log
    texts = [t for t, _ in svg_texts(out / "stability_curves_image_digits.svg")[1]]
    for label in ("gradient norm", "update / weight", "residual RMS"):
        assert any(label in t for t in texts), (label, texts)
    # val curves sit in the training-curves section, after the train-loss curves
    assert md.index("(curves_image_digits.png)") < md.index("(val_curves_image_digits.png)")


def test_the_committed_example_report_keeps_text_on_canvas():
    """reports/example is regenerated from a fresh demo with this code: the same check."""
    svgs = sorted((Path(__file__).parents[1] / "reports" / "example").glob("*.svg"))
    assert len(svgs) >= 10
    assert [p for s in svgs for p in text_problems(s)] == []
