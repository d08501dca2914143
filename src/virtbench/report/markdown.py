"""``virtbench report --format markdown``: the report's tables and findings for pasting."""

from __future__ import annotations

from collections.abc import Sequence

from virtbench.report.data import SEVERITY_LABEL, Document, Report, build


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1,
           numeric: Sequence[bool] | None = None) -> list[str]:
    """A Markdown table; columns from ``right`` on (or those ``numeric`` marks) align right."""
    align = numeric if numeric is not None else [i >= right for i in range(len(header))]
    out = ["| " + " | ".join(_cell(h) for h in header) + " |",
           "|" + "|".join("---:" if a else "---" for a in align) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def render(report: Report) -> str:
    lines = [f"# {report.title}", "",
             f"Generated {report.generated} by virtbench {report.version}.", ""]
    if report.fleet is not None:
        from virtbench.report.fleet import render_markdown as fleet_markdown

        lines += [f"## Fleet {report.fleet.fleet}", "", fleet_markdown(report.fleet)]
    if report.runs:
        lines += ["## Summary", ""]
        header = ["run", *(lab for lab, _ in report.summary_rows[0]["scores"]),
                  "kernel-entry / CPU", "findings"]
        rows = [[s["label"], *(v for _, v in s["scores"]), s["kernel_entry"],
                 str(s["findings"])] for s in report.summary_rows]
        lines += [*_table(header, rows), ""]
        for s in report.summary_rows:
            if s["headline"]:
                lines.append(f"- {s['label']}: {s['headline']}")
        if any(s["headline"] for s in report.summary_rows):
            lines.append("")
        lines += [f"_{note}_" for note in report.notes]
        if report.notes:
            lines.append("")
        for c in report.copies:
            n = report.numbers[c]
            lines += [f"## {c} cop{'y' if c == 1 else 'ies'}", ""]
            header = ["test"]
            for col in n["columns"]:
                header += [f"{col['label']} score", "index"] + (["ratio"] if col["ratio"] else [])
            rows = []
            for row in n["rows"]:
                cells = [row["name"]]
                for cell in row["cells"]:
                    cells += [f"{cell['score']} {cell['unit']}".strip(), cell["index"]]
                    if cell["show_ratio"]:
                        r = cell["ratio"]
                        cells.append(f"{r:.2f}x" if r is not None else "—")
                rows.append(cells)
            total = ["**System Benchmarks Index Score**"]
            for s in n["index_scores"]:
                partial = f" ({s['partial']})" if s.get("partial") else ""
                total += ["", f"**{s['score']}**{partial}"] + ([""] if s["show_ratio"] else [])
            rows.append(total)
            lines += [*_table(header, rows), ""]
        lines += ["## Findings", ""]
        for rv in report.runs:
            head = f"### {rv.label}"
            if rv.against_label:
                head += f" (against {rv.against_label})"
            lines += [head, ""]
            if not rv.explanation.findings:
                lines += ["No findings.", ""]
            for f in rv.explanation.findings:
                where = f"{f.copies} cop{'y' if f.copies == 1 else 'ies'}" if f.copies else \
                    "whole run"
                lines += [f"- **{SEVERITY_LABEL[f.severity]}: {f.title}** ({where}, "
                          f"`{f.rule}`). {f.message} *What to do:* {f.advice}"]
            lines.append("")
    if report.experiments:
        lines += ["## Experiments", ""]
        for e in report.experiments:
            lines += [f"### {e.title} ({e.label}, `{e.doc.experiment}`, {e.doc.status})", ""]
            if e.description:
                lines += [e.description, ""]
            if e.rows:
                lines += [*_table(e.columns, e.rows, numeric=e.numeric), ""]
            if e.summary:
                lines += [*_table(["summary", "value"], e.summary, right=2), ""]
    lines += ["## Environment", ""]
    labels = [rv.label for rv in report.runs] + [e.label for e in report.experiments]
    lines += [*_table(["", *labels], [[name, *vals] for name, vals in report.environment],
                      right=len(labels) + 1), ""]
    return "\n".join(lines).rstrip() + "\n"


def render_documents(docs: Sequence[Document], *, title: str | None = None) -> str:
    return render(build(docs, title=title))
