"""How far each claim's test here is from the setting its source measured (width, depth,
data, steps). The report prints it under every finding, so a verdict is read at its scale."""

from __future__ import annotations

HERE = "here: width 64, depth 8 (c: also 2), 200 steps, lr 1e-3, the embedded tasks"
# (d), (g): every variant at its own best lr of the grid, chosen on validation
OWN_LR = (
    "here: width 64, depth 8, 200 steps, each variant at its own val-best lr of 1e-4 … 1e-1, "
    "the embedded tasks"
)

PAPER_SETTINGS: dict[str, str] = {
    "a": "Xiong et al. 2020 measure the FFN's second weight W² per layer at init with a "
    "token-level translation loss (d = 512, 6 layers, ReLU); " + HERE + ", the whole "
    "block's gradient on one probe batch. `resnorm probe xiong` measures their quantity "
    "in their setting (docs/xiong.md).",
    "b": "Xiong et al. 2020: translation and BERT (d = 512–768), warmup of thousands of "
    "steps, 100k+ steps; " + HERE + ", warmup 50 vs 0 steps.",
    "c": "Dong et al. 2021: pure attention stacks (no MLP, no skip) and trained BERT-size "
    "models (d = 768, 12–24 layers); " + HERE + ", full blocks with the skip removed, "
    "cosine similarity at init.",
    "d": "Bachlechner et al. 2020: 12–128 layers on enwik8 (d = 256–512), each model at "
    "its own tuned lr; " + OWN_LR + ".",
    "e": "Wang et al. 2022: 200–1000 layers (d = 512–1024), translation, where Post-LN "
    "diverges from about 18 layers; " + HERE + ", judged at those of depths 8, 16, 32 where "
    "Post-LN fails here.",
    "f": "Xiong et al. 2020 and Liu et al. 2020 report Pre-LN trains at larger lr and "
    "without warmup on translation/BERT; " + HERE + ", lr grid 1e-4 … 1e-1.",
    "g": "Zhu et al. 2025: ViT/ConvNeXt on ImageNet, LLaMA 7B–70B, DiT, wav2vec, each at "
    "tuned settings; " + OWN_LR + ".",
    "h": "Zhang & Sennrich 2019: translation models (d = 512) timed on GPUs; " + HERE + "; "
    "the cost is timed by `resnorm bench norm` at widths 512–4096.",
    "i": "The seed article states it without a setting; " + HERE + ".",
    "j": "The seed article states it without a setting; " + HERE + ".",
    "k": "The seed article states it without a setting; " + HERE + ".",
    "l": "The seed article's formula, tested as a drop-in for BERT's Post-LN; " + HERE + ".",
    "m": "The seed article's formula; " + HERE + ", with 4 heads (d_k = 16) and 1 head "
    "(d_k = 64, the usual head width).",
    "o": "The seed article states it without a setting; " + HERE + ".",
    "p": "The seed article states it without a setting; " + HERE + ": 200 steps may be too "
    "few to overfit, and the gap is compared at equal steps, not at equal training loss.",
    "q": "The seed article states it without a setting; " + HERE + ".",
    "n": "Wortsman et al. 2023: decoder LMs of 9M–1.2B parameters on C4, 10k+ steps, lr "
    "grid 1e-4 … 3e-1; " + HERE + ", lr grid 3e-4 … 3e-1.",
}
