"""report.md: the same report as index.html, for diffs, PRs and terminals."""

from __future__ import annotations

import re
from pathlib import Path

from resnorm.report.analysis import frontier, lr_sensitivity
from resnorm.report.build import ReportData
from resnorm.report.render import baseline, content

REPORT_MD = "report.md"


def text(s: object) -> str:
    """A string from the runs (task, variant, path, error) as one line of Markdown text that
    shows what it says: no line breaks, no raw HTML, no $ math."""
    return " ".join(str(s).splitlines()).replace("<", "\\<").replace("$", "\\$")


def code(s: object) -> str:
    """``s`` as an inline code span, whatever backticks it holds."""
    s = " ".join(str(s).splitlines())
    fence = "`" * (max((len(r) for r in re.findall("`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def image(title: str, target: str) -> str:
    alt = text(title).replace("[", "\\[").replace("]", "\\]")
    return f"![{alt}]({target})"


def md_table(table: content.Table) -> list[str]:
    head, rows = table
    if not head:
        return ["_No data._", ""]

    def cell(s: str) -> str:
        return text(s).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def figures(data: ReportData, section: str) -> list[str]:
    out = []
    for f in data.figs:
        if f.section == section:
            out += [
                f"**{text(f.title)}.** {text(f.caption)}",
                "",
                f"{image(f.title, f.png.name)} ([SVG]({f.svg.name}))",
                "",
            ]
    return out


def render(data: ReportData) -> str:
    lines = [
        f"# {data.title}",
        "",
        f"Generated {data.generated} from: " + ", ".join(code(s) for s in data.sources) + ".",
        "",
        text(content.status_line(data)) + " One row per run: [runs.csv](runs.csv).",
        "",
    ]
    if data.skipped:
        lines += ["**Skipped (unreadable) summaries:**", ""]
        lines += [f"- {code(s)}" for s in data.skipped] + [""]
    if data.notes:
        lines += [f"- {text(n)}" for n in data.notes] + [""]
    if data.workspace:
        lines += [f"W&B workspace spec: {data.workspace}", ""]
    lines += baseline.markdown(data, md_table, text)
    lines += ["## Verdicts", "", content.MATRIX_NOTE, ""]
    lines += md_table(content.verdict_matrix(data)[0]) + figures(data, content.HEADLINE)
    lines += ["## Summary", "", "Per task × variant × depth: headline test metric over seeds.", ""]
    lines += md_table(content.summary_table(data))
    if t := content.targets_line(data):
        lines += [text(t), ""]
    lines += ["## Findings", ""] + md_table(content.findings_table(data))
    for f in data.findings:
        lines += [
            f"### ({f.id}) {text(f.claim)} — {text(f.task)}: **{f.verdict_text()}**",
            "",
            f"- Source: {text(f.source)}",
            f"- Test: {text(f.test)}",
            f"- Effect: {text(f.effect_text())} {text(f.unit)} (n = {f.n})",
        ]
        lines += [f"  - {text(d)}" for d in f.details]
        if f.missing:
            lines += ["- Missing: " + text("; ".join(f.missing))]
        lines += [f"- Needs: {text(f.needs)}", ""]
    if (budget := content.budget_table(data))[0]:
        lines += [f"## {content.BUDGET_TITLE}", "", text(content.budget_note()), ""]
        lines += md_table(budget)
    for section, title in content.SECTION_TITLES.items():
        if section == content.HEADLINE:
            continue  # drawn under the verdicts
        figs = figures(data, section)
        if section == "lr":
            lines += [f"## {title}", "", lr_sensitivity.DEFINITION, ""]
            lines += md_table(content.lr_table(data)) + figs
        elif section == "frontier" and not data.frontier_table.empty:
            lines += [f"## {title}", "", frontier.definition(), ""]
            lines += md_table(content.frontier_table(data)) + figs
        elif figs:
            lines += [f"## {title}", ""] + figs
    for sec in data.optuna:
        lines += [f"## Optuna study {code(sec.study)}", ""] + [f"- {text(x)}" for x in sec.lines]
        lines += [""]
        for f in sec.figs:
            lines += [f"**{text(f.title)}.** {text(f.caption)}", "", image(f.title, f.png.name), ""]
    head, rows = content.not_aggregated(data)
    if rows:
        lines += ["## Runs not aggregated", ""] + md_table((head, rows))
    lines += ["## Methods", ""] + [f"- {m}" for m in content.methods(data.looks)] + [""]
    return "\n".join(lines)


def write(data: ReportData, out: Path) -> Path:
    path = out / REPORT_MD
    path.write_text(render(data), encoding="utf-8")
    return path
