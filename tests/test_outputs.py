"""The outputs contract: run keys, atomic writes, schema checks."""

from __future__ import annotations

import json
import os

import pytest

from resnorm.outputs import read_summary, run_key, write_json_atomic


def test_run_key_ignores_run_only_keys_but_not_computation():
    base = {"model": {"depth": 2}, "trainer": {"max_steps": 5, "num_threads": 1},
            "logger": {"name": "csv"}, "stability": {"enabled": True, "probes": True}}  # fmt: skip
    same = json.loads(json.dumps(base))
    same["trainer"]["num_threads"] = 8
    same["logger"] = {"name": "wandb", "project": "x"}
    same["stability"]["probes"] = False
    same["optuna"] = {"trial": 3}
    assert run_key(same) == run_key(base)
    for path, value in ((("model", "depth"), 4), (("trainer", "max_steps"), 6),
                        (("stability", "enabled"), False)):  # fmt: skip
        other = json.loads(json.dumps(base))
        other[path[0]][path[1]] = value
        assert run_key(other) != run_key(base), path


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "running"})
    circular: dict = {"status": "completed"}
    circular["self"] = circular  # json fails midway through the dump
    with pytest.raises(ValueError, match="Circular"):
        write_json_atomic(path, circular)
    assert json.loads(path.read_text()) == {"status": "running"}  # the old file, intact
    assert os.listdir(tmp_path) == ["summary.json"]  # no temp file left behind


def test_summary_from_a_newer_schema_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"schema": 99, "status": "completed"}))
    with pytest.raises(ValueError, match="newer than this resnorm"):
        read_summary(tmp_path)
