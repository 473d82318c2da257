"""index.html: one self-contained file (figures as data URIs, inline CSS, no network),
so it opens from disk, from an e-mail attachment, or from a CI artifact."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from resnorm.report.analysis import frontier, lr_sensitivity
from resnorm.report.build import ReportData
from resnorm.report.render import baseline, content

INDEX_HTML = "index.html"
VERDICT_CLASS = {
    "supported": "ok",
    "not supported": "no",
    "inconclusive": "maybe",
    "not testable": "maybe",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:12px;margin:.6rem 0 1rem}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
.ok{background:#e3f5e1}.no{background:#fbe3e1}.maybe{background:#fff6d6}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}.small{font-size:12px;color:#555}
details{margin:.3rem 0 .8rem}code{background:#f4f4f4;padding:0 3px}
"""

# Marks the page once every figure has decoded, e.g. for a headless-browser check.
LOAD_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-figures', imgs.length);
  document.body.setAttribute('data-figures-loaded', ok);
});
</script>"""


def table(
    t: content.Table, verdict_col: int | None = None, cell_verdicts: list[list[str]] | None = None
) -> str:
    """A table; rows coloured by the verdict in ``verdict_col``, or each cell by its own
    entry of ``cell_verdicts``."""
    head, rows = t
    if not head:
        return "<p><em>No data.</em></p>"
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        row_cls = (
            VERDICT_CLASS.get(r[verdict_col].split(" (")[0], "") if verdict_col is not None else ""
        )
        out.append(f'<tr class="{row_cls}">' if row_cls else "<tr>")
        for j, c in enumerate(r):
            cls = VERDICT_CLASS.get(cell_verdicts[i][j], "") if cell_verdicts else ""
            out.append(f'<td class="{cls}">' if cls else "<td>")
            out.append(f"{escape(str(c))}</td>")
        out.append("</tr>")
    return "".join(out) + "</tbody></table>"


def matrix(data: ReportData) -> str:
    """The verdict matrix, each cell coloured by its own verdict."""
    t, verdicts = content.verdict_matrix(data)
    return table(t, cell_verdicts=verdicts) if t[0] else "<p><em>No findings.</em></p>"


def figure(f) -> str:
    data = base64.b64encode(Path(f.png).read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{escape(f.name)}"><img alt="{escape(f.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>{escape(f.title)}.</b> '
        f'{escape(f.caption)} <a href="{escape(f.svg.name)}">SVG</a> · '
        f'<a href="{escape(f.png.name)}">PNG</a></figcaption></figure>'
    )


def findings_html(data: ReportData) -> str:
    parts = [table(content.findings_table(data), verdict_col=2)]
    for f in data.findings:
        cls = VERDICT_CLASS.get(f.verdict, "")
        items = [
            f"<li>Source: {escape(f.source)}</li>",
            f"<li>Test: {escape(f.test)}</li>",
            f"<li>Effect: {escape(f.effect_text())} {escape(f.unit)} (n = {f.n})</li>",
        ]
        items += [f"<li class='small'>{escape(d)}</li>" for d in f.details]
        if f.missing:
            items.append(f"<li>Missing: {escape('; '.join(f.missing))}</li>")
        items.append(f"<li class='small'>Needs: {escape(f.needs)}</li>")
        parts.append(
            f"<details><summary><span class='{cls}'>({escape(f.id)}) "
            f"{escape(f.claim)} — {escape(f.task)}: <b>{escape(f.verdict_text())}</b></span>"
            f"</summary><ul>{''.join(items)}</ul></details>"
        )
    return "".join(parts)


def render(data: ReportData) -> str:
    body = [
        f"<h1>{escape(data.title)}</h1>",
        f"<p class='small'>Generated {escape(data.generated)} from "
        f"{', '.join(f'<code>{escape(s)}</code>' for s in data.sources)}.</p>",
        f"<p>{escape(content.status_line(data))} One row per run: "
        f"<a href='runs.csv'>runs.csv</a>; also <a href='report.md'>report.md</a>.</p>",
    ]
    if data.skipped:
        body.append(
            "<p><b>Skipped (unreadable) summaries:</b></p><ul>"
            + "".join(f"<li><code>{escape(s)}</code></li>" for s in data.skipped)
            + "</ul>"
        )
    body += [f"<p class='small'>{escape(n)}</p>" for n in data.notes]
    if data.workspace:
        body.append(f"<p>W&amp;B workspace spec: <code>{escape(data.workspace)}</code></p>")
    body += baseline.html(data, table)
    body += [
        "<h2 id='verdicts'>Verdicts</h2>",
        f"<p>{escape(content.MATRIX_NOTE)}</p>",
        matrix(data),
        *(figure(f) for f in data.figs if f.section == content.HEADLINE),
        "<h2 id='summary'>Summary</h2>",
        "<p>Per task × variant × depth: headline test metric over seeds.</p>",
        table(content.summary_table(data)),
    ]
    if t := content.targets_line(data):
        body.append(f"<p class='small'>{escape(t)}</p>")
    body += ["<h2 id='findings'>Findings</h2>", findings_html(data)]
    if (budget := content.budget_table(data))[0]:
        body += [
            f"<h2 id='budget'>{escape(content.BUDGET_TITLE)}</h2>",
            f"<p>{escape(content.budget_note())}</p>",
            table(budget),
        ]
    for section, title in content.SECTION_TITLES.items():
        if section == content.HEADLINE:
            continue  # drawn under the verdicts
        figs = [figure(f) for f in data.figs if f.section == section]
        if section == "lr":
            body += [
                f"<h2 id='{section}'>{escape(title)}</h2>",
                f"<p>{escape(lr_sensitivity.DEFINITION)}</p>",
                table(content.lr_table(data)),
                *figs,
            ]
        elif section == "frontier" and not data.frontier_table.empty:
            body += [
                f"<h2 id='{section}'>{escape(title)}</h2>",
                f"<p>{escape(frontier.definition())}</p>",
                table(content.frontier_table(data)),
                *figs,
            ]
        elif figs:
            body += [f"<h2 id='{section}'>{escape(title)}</h2>", *figs]
    for sec in data.optuna:
        body += [
            f"<h2>Optuna study <code>{escape(sec.study)}</code></h2>",
            "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in sec.lines) + "</ul>",
            *(figure(f) for f in sec.figs),
        ]
    head, rows = content.not_aggregated(data)
    if rows:
        body += ["<h2 id='not-aggregated'>Runs not aggregated</h2>", table((head, rows))]
    body += [
        "<h2 id='methods'>Methods</h2><ul>",
        *(f"<li>{escape(m)}</li>" for m in content.methods(data.looks)),
        "</ul>",
    ]
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(data.title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + LOAD_SCRIPT
        + "</body></html>\n"
    )


def write(data: ReportData, out: Path) -> Path:
    path = out / INDEX_HTML
    path.write_text(render(data), encoding="utf-8")
    return path
