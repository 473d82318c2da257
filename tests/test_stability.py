"""Stability instrumentation: metric functions against direct computations, the
properties the literature predicts on the real Encoder, and whole runs through the CLI."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from resnorm.data.digits import DigitsDataModule
from resnorm.models import Classifier, Encoder, PatchEmbed2d
from resnorm.outputs import METRICS_CSV, STABILITY, SUMMARY
from resnorm.stability import (
    DivergenceMonitor,
    SpikeDetector,
    attention_stats,
    check_stability_options,
    find_blocks,
    forward_probe,
    global_grad_norm,
    grad_norm_profile,
    layer_grad_norms,
    params_finite,
    residual_rms,
    snapshot_block_params,
    token_cosine_similarity,
    update_to_weight_ratio,
)

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The CPU is shared: one intra-op thread keeps these small models fast and steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ce(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """128 real validation images of the image_digits task, and their labels."""
    dm = DigitsDataModule()
    dm.setup()
    x, y = dm.splits["val"]
    return x[:128], y[:128]


def vit(depth: int, seed: int, **kw) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(PatchEmbed2d(8, 2, 1, 64), 10, dim=64, depth=depth, heads=4, **kw)


# ---- metric functions against direct computations ---------------------------------------
def test_attention_entropy_of_uniform_attention_is_log_t():
    t = 9
    stats = attention_stats(torch.full((2, 3, t, t), 0.7))
    torch.testing.assert_close(stats["entropy"], torch.full((3,), math.log(t)))
    torch.testing.assert_close(stats["max_logit"], torch.full((3,), 0.7))


def test_attention_stats_match_categorical_entropy_with_a_causal_mask():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 6) * 3
    logits = logits.masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    stats = attention_stats(logits)
    direct = torch.distributions.Categorical(logits=logits).entropy().mean(dim=(0, 2))
    torch.testing.assert_close(stats["entropy"], direct)
    finite = logits.masked_fill(logits.isinf(), -1e9)
    torch.testing.assert_close(stats["max_logit"], finite.amax(dim=(0, 2, 3)))
    # one sharply peaked head: entropy near 0
    peaked = torch.zeros(1, 1, 5, 5)
    peaked[..., 0] = 100.0
    assert attention_stats(peaked)["entropy"].item() < 1e-6


def test_token_cosine_similarity_matches_pairwise_loop():
    torch.manual_seed(0)
    h = torch.randn(3, 5, 8)
    direct = torch.stack([
        torch.stack([F.cosine_similarity(h[b, i], h[b, j], dim=0)
                     for i in range(5) for j in range(5) if i != j]).mean()
        for b in range(3)
    ]).mean()  # fmt: skip
    torch.testing.assert_close(token_cosine_similarity(h), direct)
    same = torch.randn(1, 8).expand(4, 6, 8)
    torch.testing.assert_close(token_cosine_similarity(same), torch.tensor(1.0))
    orthogonal = torch.eye(6).unsqueeze(0)
    torch.testing.assert_close(token_cosine_similarity(orthogonal), torch.tensor(0.0))


def test_residual_rms_is_root_mean_square():
    h = torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])
    torch.testing.assert_close(residual_rms(h), torch.tensor(math.sqrt(25 / 4)))


def test_layer_grad_norms_and_profile_match_direct_norms(digits):
    model = vit(3, seed=0)
    ce(model.eval(), digits).backward()
    by_name = dict(model.named_parameters())
    direct = {
        s: [math.sqrt(sum(p.grad.norm().item() ** 2 for n, p in by_name.items()
                          if n.startswith(f"encoder.blocks.{i}.{s}.")))
            for i in range(3)]
        for s in ("attn", "ffn")
    }  # fmt: skip
    reads = layer_grad_norms(model)
    for s in ("attn", "ffn"):
        assert reads[s] == pytest.approx(direct[s], rel=1e-5)
    assert reads["block"] == pytest.approx(
        [math.hypot(a, f) for a, f in zip(direct["attn"], direct["ffn"], strict=True)], rel=1e-5
    )
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in model.parameters()))
    assert global_grad_norm(model).item() == pytest.approx(total, rel=1e-5)
    # the autograd profile computes the same numbers and leaves no .grad behind
    fresh = vit(3, seed=0).train()
    profile = grad_norm_profile(fresh, ce, digits)
    assert all(p.grad is None for p in fresh.parameters())
    assert fresh.training and all(m.training for m in fresh.modules())
    for s in ("attn", "ffn"):
        assert profile[s] == pytest.approx(direct[s], rel=1e-4)


@pytest.mark.parametrize("clip", [1e-3, None])
def test_module_reports_the_norm_before_clipping(digits, compose_cfg, clip):
    """The monitor reads the norm the clipping computed rather than taking a second one."""
    from resnorm.training.builders import build_model
    from resnorm.training.module import TaskModule

    spec = DigitsDataModule().spec
    torch.manual_seed(0)
    model = build_model(compose_cfg().model, spec)
    module = TaskModule(model, spec, [{"lr": 1e-3, "weight_decay": 0.0}], 10, [clip])
    module.request_grad_norm()  # as the stability callback does
    module.loss(module(digits[0].unsqueeze(0))[0], digits[1]).backward()  # a pack of one
    grads = [p.grad.clone() for p in model.parameters()]
    direct = torch.sqrt(sum(g.double().square().sum() for g in grads))
    module.on_before_optimizer_step(None)
    assert module.last_grad_norms[0].item() == pytest.approx(direct.item(), rel=1e-5)
    after = global_grad_norm(module).item()
    assert after == pytest.approx(clip if clip else direct.item(), rel=1e-4)


class Solo(nn.Module):
    """A members=1 model fed plain (B, ...) batches, as any other network would be."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(0))[0]


class PlainModule(pl.LightningModule):
    """A LightningModule that is no GradNormSource: the callback takes the norm itself."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self.loss(self.model(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=0.1)


@pytest.mark.parametrize("kind", ["task_module", "plain"])
def test_callback_monitors_any_lightning_module(digits, compose_cfg, kind):
    """TaskModule hands over the norm it takes; any other module gets it taken for it.
    Either way the monitor sees each step's pre-clipping norm and the probes run."""
    from resnorm.training.builders import build_model
    from resnorm.training.module import GradNormSource, TaskModule
    from resnorm.training.stability_callback import StabilityCallback

    spec = DigitsDataModule().spec
    torch.manual_seed(0)
    model = build_model(compose_cfg("model.depth=2").model, spec)
    module = (
        TaskModule(model, spec, [{"lr": 1e-3, "weight_decay": 0.0}], 4, [None])
        if kind == "task_module"
        else PlainModule(Solo(model))
    )
    assert isinstance(module, GradNormSource) == (kind == "task_module")
    cb = StabilityCallback(probe_every=2, probe_batch_size=16)
    # a TaskModule trains a pack: its batches carry a member dimension (of one here)
    packed = kind == "task_module"
    collate = lambda b: tuple(torch.stack(t).unsqueeze(0) if packed else torch.stack(t)  # noqa: E731
                              for t in zip(*b, strict=True))  # fmt: skip
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*digits), batch_size=32, collate_fn=collate
    )
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=4, logger=False, callbacks=[cb], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    # the last step's gradients are still in .grad (unclipped: no grad_clip here)
    last = global_grad_norm(model).item()
    assert cb.monitor.grad.count == 4 and cb.monitor.grad.last == pytest.approx(last, rel=1e-6)
    if kind == "task_module":  # computed by the module although it does not clip
        assert module.last_grad_norms[0].item() == cb.monitor.grad.last
    st = cb.summary()
    assert not st["diverged"] and st["probe_count"] == 2
    assert st["grad_norm_last"] == cb.monitor.grad.last
    assert [h["step"] for h in cb.probes.history] == [2, 4] and cb.probes.final["step"] == 4


def test_update_to_weight_ratio_matches_direct_computation():
    model = vit(2, seed=0)
    before = snapshot_block_params(model)
    with torch.no_grad():
        model.encoder.blocks[1].ffn.fn.fc1.weight.add_(0.5)
    w = before[1]
    fc1 = model.encoder.blocks[1].ffn.fn.fc1.weight
    expected = 0.5 * math.sqrt(fc1.numel()) / math.sqrt(sum(t.norm().item() ** 2 for t in w))
    assert update_to_weight_ratio(model, before) == pytest.approx([0.0, expected], rel=1e-5)


def test_probes_leave_modes_rng_and_grads_as_they_were(digits):
    model = vit(2, seed=0, dropout=0.1).train()
    model.encoder.blocks[0].eval()  # a mixed state must come back exactly
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    forward_probe(model, digits[0])
    grad_norm_profile(model, ce, digits)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())


def test_params_finite():
    model = vit(1, seed=0)
    assert params_finite(model)
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    assert not params_finite(model)


def test_find_blocks_names_what_it_needs():
    with pytest.raises(ValueError, match="no resnorm Block"):
        find_blocks(nn.Linear(2, 2))


# ---- divergence and spikes ---------------------------------------------------------------
def test_divergence_monitor_smoothed_loss_and_each_reason():
    m = DivergenceMonitor(loss_multiple=3.0, smoothing=0.5)
    assert not m.update(1, 2.0) and m.smoothed_loss == pytest.approx(2.0)
    assert not m.update(2, 4.0)
    assert m.smoothed_loss == pytest.approx((0.25 * 2 + 0.5 * 4) / 0.75)  # bias-corrected EMA
    assert not m.update(3, 7.0)  # the raw loss is 3.5x the initial, the smoothed one is not
    assert m.smoothed_loss == pytest.approx((0.125 * 2 + 0.25 * 4 + 0.5 * 7) / 0.875)
    assert m.update(4, 20.0) and (m.diverged_at_step, m.reason) == (4, "loss_above_multiple")
    assert m.update(5, 1.0) and m.diverged_at_step == 4  # stays diverged at its first step
    nan = DivergenceMonitor()
    assert nan.update(7, float("nan")) and (nan.diverged_at_step, nan.reason) == (
        7,
        "nonfinite_loss",
    )
    inf = DivergenceMonitor()
    assert not inf.update(1, 2.3, grad_norm=1.0)
    assert inf.update(2, 2.3, grad_norm=float("inf")) and inf.reason == "nonfinite_grad"
    off = DivergenceMonitor(loss_multiple=None)
    assert not off.update(1, 1.0) and not off.update(2, 1e6)


def test_spike_detector_against_running_median():
    d = SpikeDetector(multiple=2.0, window=5, min_history=3)
    losses = [1.0, 5.0, 1.0, 1.0, 1.1, 2.5, 0.9, 1.9, 4.0]
    flags = [d.update(step, loss) for step, loss in enumerate(losses, start=1)]
    # step 2 has too little history; step 6: median(1,5,1,1,1.1)=1.0 -> 2.5 > 2 is a spike;
    # step 9: median(1,1.1,2.5,0.9,1.9)=1.1 -> 4.0 > 2.2 is a spike
    assert flags == [False, False, False, False, False, True, False, False, True]
    assert d.count == 2 and d.steps == [6, 9]
    assert not d.update(10, float("nan")) and d.count == 2
    # near zero, noise is not a spike: the rise must also exceed min_rise x initial loss
    losses = [2.3, 0.01, 0.01, 0.01, 0.03, 1.0]
    for min_rise, expected in ((0.1, [6]), (0.0, [5, 6])):
        d = SpikeDetector(multiple=2.0, window=5, min_history=3, min_rise=min_rise)
        for step, loss in enumerate(losses, start=1):
            d.update(step, loss)
        assert d.steps == expected, min_rise


def test_options_are_checked_with_the_option_named():
    with pytest.raises(ValueError, match="stability.probe_every"):
        check_stability_options({"probe_every": 0})
    with pytest.raises(ValueError, match="stability.divergence_loss_multiple"):
        check_stability_options({"divergence_loss_multiple": 0.5})
    with pytest.raises(ValueError, match="stability.spike_window"):
        check_stability_options({"spike_window": 5, "spike_min_history": 10})
    with pytest.raises(ValueError, match="stability.probe_evry is not an option"):
        check_stability_options({"probe_evry": 5})


def test_callback_state_survives_a_weights_only_checkpoint(digits):
    import io

    from resnorm.training.stability_callback import StabilityCallback

    cb = StabilityCallback(spike_window=5, spike_min_history=3)
    for step, loss in enumerate([2.3, 2.0, 1.8, 1.7, 4.0, 1.5], start=1):
        cb.monitor.add(step, torch.tensor(loss), torch.tensor(1.0 + step))
    assert cb.monitor.judge() == 6 and cb.monitor.grad.count == 6
    model = vit(2, seed=0)
    cb.probes.init = {"step": 0, "loss": 2.3, "grad_norm": grad_norm_profile(model, ce, digits),
                      **forward_probe(model, digits[0])}  # fmt: skip
    buf = io.BytesIO()
    torch.save({"callbacks": {"StabilityCallback": cb.state_dict()}}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["callbacks"]["StabilityCallback"]
    resumed = StabilityCallback(spike_window=5, spike_min_history=3)
    resumed.load_state_dict(state)
    assert resumed.summary() == cb.summary() and resumed.monitor.spikes.steps == [5]
    assert resumed.summary()["grad_norm_max"] == 7.0 and resumed.report() == cb.report()
    assert resumed.monitor.divergence.smoothed_loss == cb.monitor.divergence.smoothed_loss
    assert resumed.monitor.spikes.update(7, 9.0) == cb.monitor.spikes.update(7, 9.0) is True


# ---- what the literature predicts, on the real Encoder ----------------------------------
def test_post_ln_gradient_grows_toward_output_relative_to_pre_ln(digits):
    """Xiong et al. 2020, at initialisation: Post-LN's per-layer FFN gradient norm leans
    toward the output layers compared with Pre-LN's. With this Encoder's Xavier init,
    Post-LN is about flat (last/first ~ 1) and Pre-LN falls toward the output (~ 0.3-0.5),
    so the comparison is between the two ratios, seed by seed."""
    for seed in range(3):
        ratios = {}
        for position in ("post", "pre"):
            ffn = grad_norm_profile(vit(8, seed, norm_position=position), ce, digits)["ffn"]
            ratios[position] = ffn[-1] / ffn[0]
        assert ratios["post"] > 0.8 and ratios["pre"] < 0.5, (seed, ratios)
        assert ratios["post"] > 2 * ratios["pre"], (seed, ratios)


def test_without_residuals_tokens_collapse_with_depth(digits):
    """Dong et al. 2021: without skip connections token representations become identical
    with depth (cosine -> 1); with them they stay clearly apart."""
    off = forward_probe(vit(12, 0, residual="off"), digits[0])["token_cosine"]
    on = forward_probe(vit(12, 0, residual="on"), digits[0])["token_cosine"]
    assert off[-1] > 0.99 and off[-1] > off[0]
    assert on[-1] < 0.9 and off[-1] - on[-1] > 0.1
    # the Encoder alone, on a fixed random batch, shows the same
    x = torch.randn(16, 12, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    enc_off = forward_probe(Encoder(32, 12, 4, residual="off"), x)["token_cosine"]
    torch.manual_seed(0)
    enc_on = forward_probe(Encoder(32, 12, 4, residual="on"), x)["token_cosine"]
    assert enc_off[-1] > 0.99 > 0.9 > enc_on[-1]


# ---- whole runs --------------------------------------------------------------------------
def resnorm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resnorm.cli", "train", *args, "trainer.num_threads=1"],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_divergent_run_stops_reports_its_step_and_the_multirun_goes_on(tmp_path):
    out = resnorm(
        "-m", "optim.lr=1e3,1e-3", "optim.grad_clip=null", "optim.warmup_steps=0",
        "trainer.max_steps=40", "task.val_every=20", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    runs = {json.loads(p.read_text())["lr"]: p.parent for p in tmp_path.rglob(SUMMARY)}
    bad = json.loads((runs[1e3] / SUMMARY).read_text())
    assert bad["status"] == "diverged"
    assert 1 <= bad["diverged_at_step"] < 40 and bad["steps"] == bad["diverged_at_step"]
    assert bad["stability"]["diverged"] and bad["stability"]["divergence_reason"]
    report = json.loads((runs[1e3] / STABILITY).read_text())
    assert report["divergence"]["step"] == bad["diverged_at_step"]
    # the loss of the step it stopped at is logged even off the log_every grid
    # (Lightning numbers a step's row from 0: the row of step k is k - 1)
    assert bad["diverged_at_step"] - 1 in logged(runs[1e3], "train/loss")
    good = json.loads((runs[1e-3] / SUMMARY).read_text())
    assert good["status"] == "completed" and good["steps"] == 40 and "diverged_at_step" not in good
    assert not good["stability"]["diverged"]


def logged(run_dir: Path, key: str) -> dict[int, str]:
    """{step: value} of one column of the CSV metrics log, as written (exact digits)."""
    with open(run_dir / METRICS_CSV) as f:
        return {int(r["step"]): r[key] for r in csv.DictReader(f) if r.get(key)}


@pytest.mark.slow
def test_probes_do_not_change_training_and_fill_the_outputs(tmp_path):
    common = ["trainer.max_steps=12", "task.val_every=6", "trainer.log_every=1",
              "model.dropout=0.1", "stability.probe_every=3"]  # fmt: skip
    dirs = {}
    for probes in ("true", "false"):
        dirs[probes] = tmp_path / probes
        out = resnorm(*common, f"stability.probes={probes}", f"hydra.run.dir={dirs[probes]}",
                      cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
    for key in ("train/loss", "stability/grad_norm"):  # the same, to the last digit
        on, off = logged(dirs["true"], key), logged(dirs["false"], key)
        assert len(on) == 12 and on == off, key
    s_on, s_off = (json.loads((dirs[k] / SUMMARY).read_text()) for k in ("true", "false"))
    assert s_on["metrics"] == s_off["metrics"]
    st = s_on["stability"]
    assert st["probe_count"] == 4 and st["probes"] and s_off["stability"]["probe_count"] == 0
    for key in ("init_grad_ffn_last_over_first", "final_token_cosine_last", "grad_norm_max",
                "initial_loss", "update_ratio_max", "final_attn_max_logit"):  # fmt: skip
        assert math.isfinite(st[key]), key
    report = json.loads((dirs["true"] / STABILITY).read_text())
    assert report["depth"] == 4 and report["heads"] == 4
    assert [h["step"] for h in report["history"]] == [3, 6, 9, 12]
    assert report["init"]["step"] == 0 and report["final"]["step"] == 12
    for phase in (report["init"], report["final"], *report["history"]):
        assert len(phase["token_cosine"]) == 4 and len(phase["grad_norm"]["ffn"]) == 4
        assert len(phase["attn_entropy"]) == 4 and len(phase["attn_entropy"][0]) == 4
    with open(dirs["true"] / METRICS_CSV) as f:
        header = next(csv.reader(f))
    assert "stability/token_cosine/layer03" in header and "stability/grad_norm" in header


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_per_step_checks_do_not_sync_the_gpu(digits, compose_cfg):
    """Between checks the callback's per-step hooks leave loss and grad norm on the device."""
    from resnorm.training.builders import build_model
    from resnorm.training.module import TaskModule
    from resnorm.training.stability_callback import build_stability_callback

    cfg = compose_cfg("trainer=gpu", "stability.probes=false")
    spec = DigitsDataModule().spec
    optim = [{"lr": 1e-3, "weight_decay": 0.0}]
    module = TaskModule(build_model(cfg.model, spec), spec, optim, 10, [None])
    module = module.cuda()
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_steps=100, logger=False)
    cb = build_stability_callback(cfg)
    cb.on_fit_start(trainer, module)
    assert cb.check_every == 16
    x, y = (t.cuda().unsqueeze(0) for t in digits)  # a pack of one
    out = module.training_step((x, y), 0)
    out["loss"].backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device->host sync now raises
    try:
        cb.on_before_optimizer_step(trainer, module, None)
        module.on_before_optimizer_step(None)  # the norm the monitor reads, as in a fit
        cb.on_train_batch_end(trainer, module, out, (x, y), 0)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(cb.monitor.pending) == 1
    cb._check(trainer, module, None)  # the batched check: one transfer, judged on the host
    assert cb.summary()["grad_norm_max"] > 0 and not cb.diverged
