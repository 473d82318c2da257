"""Language tasks: char LM on pydoc topics, ListOps, and HF text classification."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import datasets
import pytest
import torch

from resnorm.data.charlm import CharLMDataModule, encode, load_topics, split_topics
from resnorm.data.errors import DataError
from resnorm.data.listops import VOCAB, ListOpsDataModule, decode
from resnorm.data.text_classification import TextClassificationDataModule

# ------------------------------------------------------------------ char LM


@pytest.fixture(scope="module")
def charlm() -> CharLMDataModule:
    dm = CharLMDataModule(seq_len=32, train_stride=4, max_eval_windows=50)
    dm.setup()
    return dm


def test_charlm_splits_are_disjoint_whole_topics(charlm):
    parts = {k: set(v) for k, v in charlm.topics.items()}
    assert not parts["train"] & parts["val"]
    assert not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]
    topics = load_topics()
    assert parts["train"] | parts["val"] | parts["test"] == set(topics)
    total = sum(len(t) for t in topics.values())
    for split in ("val", "test"):
        share = sum(len(topics[k]) for k in parts[split]) / total
        assert 0.05 < share <= 0.1, (split, share)


def test_charlm_held_out_text_repeats_no_train_paragraph(charlm):
    topics = load_topics()
    train_paras = {p.strip() for k in charlm.topics["train"] for p in topics[k].split("\n\n")}
    long_paras = [p for p in train_paras if len(p) >= 200]
    for split in ("val", "test"):
        assert not [p for p in long_paras if p in charlm.texts[split]]


@pytest.mark.parametrize("seed", range(5))
def test_overlapping_pydoc_topics_share_a_split(seed):
    # 'customization' is a section of 'specialnames'; 'try' one of 'compound'
    parts = split_topics(load_topics(), (0.1, 0.1), seed)
    for a, b in (("customization", "specialnames"), ("try", "compound"), ("in", "comparisons")):
        assert [a in v for v in parts.values()] == [b in v for v in parts.values()]


def test_charlm_is_deterministic_and_split_seed_matters():
    a, b = CharLMDataModule(seq_len=32), CharLMDataModule(seq_len=32)
    a.setup(), b.setup()
    assert a.topics == b.topics and a.vocab == b.vocab
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
    c = CharLMDataModule(seq_len=32, split_seed=1)
    c.setup()
    assert c.topics["test"] != a.topics["test"]


def test_charlm_vocab_and_unknown_chars(charlm):
    vocab = charlm.vocab
    assert vocab[0] == "<unk>" and len(set(vocab)) == len(vocab)
    train_text = "\n\n".join(load_topics()[k] for k in charlm.topics["train"])
    assert charlm.texts["train"] == train_text
    assert set(vocab[1:]) == set(train_text)
    ids = encode("a\u2603b", vocab)  # a snowman never occurs in pydoc
    assert ids.tolist() == [vocab.index("a"), 0, vocab.index("b")]
    spec = charlm.spec
    assert spec.kind == "lm" and spec.embed == "tokens"
    assert spec.vocab_size == len(vocab) and spec.seq_len == 32
    assert spec.chance == pytest.approx(1 / len(vocab))
    assert charlm.uniform_bpc == pytest.approx(math.log2(len(vocab)))


def test_charlm_windows_are_shifted_text(charlm):
    topics = load_topics()
    train_text = "\n\n".join(topics[k] for k in charlm.topics["train"])
    x, y = charlm.splits["train"]
    assert x.shape == y.shape and x.shape[1] == 32 and x.dtype == torch.long
    assert len(x) == (len(train_text) - 1 - 32) // 4 + 1
    assert torch.equal(x[:, 1:], y[:, :-1])
    for i in (0, 7, len(x) - 1):  # window i starts at char 4*i and predicts the next char
        text = "".join(charlm.vocab[int(t)] for t in x[i]) + charlm.vocab[int(y[i, -1])]
        assert text == train_text[4 * i : 4 * i + 33]
    for split in ("val", "test"):
        xe, ye = charlm.splits[split]
        assert 0 < len(xe) <= 50 and xe.shape[1] == 32
        assert torch.equal(xe[:, 1:], ye[:, :-1])


def test_charlm_train_batches_follow_the_run_seed(charlm):
    first = [next(iter(charlm.train_dataloader()))[0] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    other = CharLMDataModule(seq_len=32, train_stride=4, seed=1)
    other.setup()
    assert not torch.equal(first[0], next(iter(other.train_dataloader()))[0])


# ------------------------------------------------------------------ ListOps


def reference_value(text: str) -> int:
    """An independent evaluator: parse the text recursively and apply the operators."""
    tokens = text.split()

    def parse(i: int) -> tuple[int, int]:
        tok = tokens[i]
        if tok.isdigit():
            return int(tok), i + 1
        op, args, i = tok[1:], [], i + 1
        while tokens[i] != "]":
            value, i = parse(i)
            args.append(value)
        result = {
            "MIN": min,
            "MAX": max,
            "SM": lambda v: sum(v) % 10,
            "MED": lambda v: math.floor(statistics.median(v)),
        }[op](args)
        return result, i + 1

    value, end = parse(0)
    assert end == len(tokens), "trailing tokens after the expression"
    return value


def nesting_depth(text: str) -> int:
    depth = best = 0
    for tok in text.split():
        depth += tok.startswith("[")
        depth -= tok == "]"
        best = max(best, depth)
    return best


@pytest.fixture(scope="module")
def listops() -> ListOpsDataModule:
    dm = ListOpsDataModule(n_train=3000, n_val=300, n_test=500, max_depth=4, min_depth=2,
                           max_args=5, max_length=40)  # fmt: skip
    dm.setup()
    return dm


def test_listops_labels_match_a_reference_evaluator(listops):
    for split in ("train", "test"):
        x, y = listops.splits[split]
        for row, label in zip(x[:600], y[:600], strict=True):
            assert reference_value(decode(row)) == int(label), decode(row)


def test_listops_respects_length_and_depth_limits(listops):
    pad = VOCAB.index("<pad>")
    for x, _ in listops.splits.values():
        assert x.shape[1] == 40
        lengths = (x != pad).sum(1)
        assert int(lengths.max()) <= 40
        positions = torch.arange(40).expand_as(x)
        assert bool(((x != pad) == (positions < lengths[:, None])).all()), "pads are a suffix"
        depths = {nesting_depth(decode(row)) for row in x[:500]}
        assert min(depths) >= 2 and max(depths) <= 4
        assert len(depths) > 1


def test_listops_is_seeded_and_splits_do_not_overlap(listops):
    same = ListOpsDataModule(n_train=3000, n_val=300, n_test=500, max_length=40)
    same.setup()
    for split in ("train", "val", "test"):
        assert torch.equal(same.splits[split][0], listops.splits[split][0])
        assert torch.equal(same.splits[split][1], listops.splits[split][1])
    other = ListOpsDataModule(n_train=3000, n_val=300, n_test=500, max_length=40, data_seed=1)
    other.setup()
    assert not torch.equal(other.splits["test"][0], listops.splits["test"][0])
    rows = {k: {tuple(r.tolist()) for r in v[0]} for k, v in listops.splits.items()}
    assert len(rows["train"]) == 3000  # distinct expressions
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]


def test_listops_spec_and_chance(listops):
    spec = listops.spec
    y = listops.splits["test"][1]
    assert spec.kind == "classification" and spec.num_classes == 10
    assert spec.embed_args == {"vocab_size": len(VOCAB), "seq_len": 40}
    assert spec.chance == pytest.approx(torch.bincount(y, minlength=10).max().item() / len(y))
    assert len(torch.unique(y)) == 10


# ------------------------------------------------------------------ HF text classification

POSITIVE = ["a great and moving film", "warm funny and wise", "a lovely little delight",
            "the best picture of the year", "great fun from start to finish"]  # fmt: skip
NEGATIVE = ["a dull and tired mess", "boring flat and far too long", "the worst script ever",
            "an ugly joyless slog", "tedious from start to finish"]  # fmt: skip


def sst2_like(n_train: int = 80) -> datasets.DatasetDict:
    """The layout of GLUE SST-2: train/validation/test, test labels hidden as -1."""
    features = datasets.Features({
        "idx": datasets.Value("int32"), "sentence": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["negative", "positive"]),
    })  # fmt: skip

    def rows(n: int, hidden: bool = False, extra: str = "") -> dict[str, list]:
        text = [(POSITIVE if i % 2 else NEGATIVE)[i % 5] + extra for i in range(n)]
        return {"idx": list(range(n)), "sentence": text,
                "label": [-1 if hidden else i % 2 for i in range(n)]}  # fmt: skip

    return datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(rows(n_train), features=features),
        "validation": datasets.Dataset.from_dict(rows(20, extra=" zyzzyva"), features=features),
        "test": datasets.Dataset.from_dict(rows(30, hidden=True), features=features),
    })  # fmt: skip


@pytest.fixture
def sst2_dir(tmp_path: Path) -> Path:
    sst2_like().save_to_disk(str(tmp_path / "sst2"))
    return tmp_path


def test_sst2_layout_uses_validation_as_test_and_carves_val(sst2_dir):
    dm = TextClassificationDataModule(data_dir=str(sst2_dir), seq_len=40, vocab_size=60,
                                      val_fraction=0.25)  # fmt: skip
    dm.setup()
    sizes = {k: len(v[1]) for k, v in dm.splits.items()}
    assert sizes == {"train": 60, "val": 20, "test": 20}
    assert (dm.splits["test"][1] >= 0).all(), "hidden -1 test labels are never used"
    spec = dm.spec
    assert spec.num_classes == 2 and spec.embed == "tokens"
    assert spec.embed_args == {"vocab_size": dm.tokenizer.get_vocab_size(), "seq_len": 40}
    assert spec.chance == pytest.approx(0.5)
    x = dm.splits["train"][0]
    assert x.shape == (60, 40) and int(x.max()) < spec.embed_args["vocab_size"]
    assert (x[:, -1] == 0).all() and (x[:, 0] != 0).all(), "right-padded with id 0"
    long = TextClassificationDataModule(data_dir=str(sst2_dir), seq_len=4, vocab_size=60)
    long.setup()
    assert long.splits["train"][0].shape == (76, 4) and (long.splits["train"][0] != 0).all()
    assert dm.tokenizer.token_to_id("[PAD]") == 0
    # the tokenizer never saw val/test text: a word only in the test split is unknown
    assert dm.tokenizer.token_to_id("zyzzyva") is None
    assert dm.tokenizer.encode("zyzzyva").ids != [dm.tokenizer.token_to_id("zyzzyva")]


def test_tokenizer_is_cached_in_data_dir_and_reused(sst2_dir):
    kw = {"data_dir": str(sst2_dir), "seq_len": 12, "vocab_size": 60}
    first = TextClassificationDataModule(**kw)
    first.setup()
    cached = list((sst2_dir / "tokenizers").glob("sst2-bpe60-*.json"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = TextClassificationDataModule(**kw)
    second.setup()
    assert cached[0].stat().st_mtime_ns == mtime, "the cached tokenizer was not retrained"
    assert torch.equal(first.splits["train"][0], second.splits["train"][0])
    wordpiece = TextClassificationDataModule(**kw, tokenizer="wordpiece")
    wordpiece.setup()
    assert len(list((sst2_dir / "tokenizers").glob("*.json"))) == 2


def test_agnews_layout_without_validation(tmp_path):
    n = 100
    texts = [f"story {i} about {['sport', 'money', 'science', 'war'][i % 4]}" for i in range(n)]
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(num_classes=4)})  # fmt: skip
    train = datasets.Dataset.from_dict({"text": texts, "label": [i % 4 for i in range(n)]},
                                       features=features)  # fmt: skip
    test = datasets.Dataset.from_dict({"text": texts[:12], "label": [0] * 6 + [1, 2, 3] * 2},
                                      features=features)  # fmt: skip
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "ag_news"))
    kw = {"dataset": "ag_news", "text_field": "text", "data_dir": str(tmp_path),
          "seq_len": 8, "vocab_size": 50, "val_fraction": 0.1}  # fmt: skip
    dm = TextClassificationDataModule(**kw)
    dm.setup()
    assert {k: len(v[1]) for k, v in dm.splits.items()} == {"train": 90, "val": 10, "test": 12}
    assert dm.spec.num_classes == 4 and dm.spec.chance == pytest.approx(0.5)
    rows = {k: {tuple(r.tolist()) for r in v[0]} for k, v in dm.splits.items()}
    assert not rows["train"] & rows["val"], "val rows are carved out of train, not copied"
    again = TextClassificationDataModule(**kw, split_seed=0)
    again.setup()
    assert torch.equal(again.splits["val"][1], dm.splits["val"][1])


def test_missing_data_offline_is_one_line_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dm = TextClassificationDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as err:
        dm.setup()
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "sst2") in message
    assert "load_dataset('stanfordnlp/sst2').save_to_disk(" in message


def test_empty_arrow_file_is_named(sst2_dir):
    arrow = next((sst2_dir / "sst2" / "train").glob("*.arrow"))
    arrow.write_bytes(b"")
    with pytest.raises(DataError, match=f"{arrow}.*empty"):
        TextClassificationDataModule(data_dir=str(sst2_dir)).setup()


def test_corrupt_files_are_named(sst2_dir):
    index = sst2_dir / "sst2" / "dataset_dict.json"
    index.write_text("{not json")
    with pytest.raises(DataError, match=f"{index}.*corrupt"):
        TextClassificationDataModule(data_dir=str(sst2_dir)).setup()
    index.write_text(json.dumps({"splits": ["train", "validation", "test"]}))
    arrow = next((sst2_dir / "sst2" / "test").glob("*.arrow"))
    arrow.write_bytes(b"this is no arrow stream")
    with pytest.raises(DataError, match=f"{arrow}.*corrupt"):
        TextClassificationDataModule(data_dir=str(sst2_dir)).setup()


def test_split_without_text_is_an_error(tmp_path):
    ds = sst2_like()
    ds["train"] = ds["train"].map(lambda r: {"sentence": ""})
    ds.save_to_disk(str(tmp_path / "sst2"))
    with pytest.raises(DataError, match="train split has no text"):
        TextClassificationDataModule(data_dir=str(tmp_path)).setup()


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
@pytest.mark.parametrize("task", ["nlp_charlm", "nlp_listops"])
def test_embedded_language_task_trains_end_to_end(task, compose_cfg, tmp_path):
    from resnorm.training.run import run_job

    cfg = compose_cfg(f"task={task}", "trainer.max_steps=5", "task.val_every=5", "logger=none",
                      "model.depth=2")  # fmt: skip
    summary = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 5
    metrics = summary["metrics"]
    keys = ["test/bpc", "test/ppl", "test/acc", "test/loss"] if task == "nlp_charlm" else [
        "test/acc", "test/f1_macro", "test/loss"]  # fmt: skip
    for key in keys:
        assert math.isfinite(metrics[key]), key
    if task == "nlp_charlm":
        assert metrics["test/bpc"] == pytest.approx(metrics["test/loss"] / math.log(2))
        assert metrics["test/bpc"] < math.log2(1 / summary["chance"]) + 1.0
    else:
        assert 0.1 < summary["chance"] < 0.2


@pytest.mark.slow
def test_sst2_trains_end_to_end_from_disk(sst2_dir, compose_cfg, tmp_path):
    from resnorm.training.run import run_job

    cfg = compose_cfg("task=text_sst2", f"task.data_dir={sst2_dir}", "trainer.max_steps=3",
                      "task.val_every=3", "logger=none", "model.depth=2",
                      "task.datamodule.vocab_size=60", "task.datamodule.batch_size=16",
                      "task.datamodule.val_fraction=0.25")  # fmt: skip
    summary = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 3
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0
    assert summary["chance"] == pytest.approx(0.5)


def test_text_task_offline_without_data_fails_before_training(compose_cfg, tmp_path, monkeypatch):
    from resnorm.training.run import run_job

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_cfg("task=text_agnews", f"task.data_dir={tmp_path}", "logger=none")
    with pytest.raises(DataError, match="ag_news not found"):
        run_job(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["steps"] == 0
