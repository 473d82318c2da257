"""The verdict matrix's last column: one claim across language, vision and speech."""

from __future__ import annotations

import pandas as pd

from resnorm.report.claims.finding import Finding
from resnorm.report.claims.modalities import across, modality
from resnorm.report.render.content import verdict_matrix


def _f(task: str, verdict: str, key: str = "b") -> Finding:
    f = Finding(key, "Post-LN needs warmup", "src", task, "test")
    f.verdict = verdict
    return f


def test_modalities_of_the_embedded_and_other_tasks():
    assert [modality(t) for t in ("image_digits", "nlp_charlm", "speech_synth")] == [
        "vision", "language", "speech"]  # fmt: skip
    assert modality("text_sst2") == "language" and modality("image_cifar10") == "vision"
    assert modality("speech_commands12") == "speech" and modality("tabular") == "tabular"


def test_across_reads_all_some_none_and_untestable():
    s, n, i, u = "supported", "not supported", "inconclusive", "not testable"
    assert across([_f("image_digits", s), _f("nlp_charlm", s), _f("speech_synth", s)]) == (
        "holds on all: language (nlp_charlm), speech (speech_synth), vision (image_digits)"
    )
    assert across([_f("image_digits", s), _f("nlp_charlm", n)]) == (
        "holds on some: holds on vision (image_digits); not on language (nlp_charlm)"
    )
    # an open task is named, never counted for or against
    assert across([_f("image_digits", s), _f("speech_synth", i)]) == (
        "holds on some: holds on vision (image_digits); open on speech (speech_synth)"
    )
    assert across([_f("image_digits", n), _f("nlp_charlm", u)]) == (
        "holds on none; not on vision (image_digits)"
    )
    assert across([_f("image_digits", u), _f("nlp_charlm", u)]) == "untestable"
    assert across([_f("image_digits", i), _f("nlp_charlm", u)]) == (
        "undecided: inconclusive on vision (image_digits)"
    )


class _Data:
    def __init__(self, findings):
        self.findings = findings
        self.runs = pd.DataFrame()


def test_the_matrix_ends_with_the_across_column():
    data = _Data([_f("image_digits", "supported"), _f("nlp_charlm", "not supported")])
    (head, rows), colours = verdict_matrix(data)
    assert head == ["claim", "image_digits", "nlp_charlm", "across modalities"]
    assert rows[0][-1].startswith("holds on some: holds on vision")
    assert colours[0] == ["", "supported", "not supported", ""]
