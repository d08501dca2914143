"""``virtbench report``: one self-contained, offline HTML file (Jinja2 + plotly.js inlined once).

The page needs nothing from the network: plotly.js comes from the installed ``plotly`` Python
package and is inlined in one ``<script>``; each chart is a JSON spec in a
``<script type="application/json">`` that one small loader hands to ``Plotly.newPlot``. The
loader records how many charts rendered and any script error in ``data-*`` attributes of
``<body>`` (what the Chromium test reads).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import jinja2
import markupsafe

from virtbench.errors import EnvironmentUnsupported
from virtbench.report import data as report_data
from virtbench.report.data import Document, Report


@functools.cache
def plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:  # pragma: no cover - plotly is a runtime dependency
        raise EnvironmentUnsupported(f"the plotly package is not installed ({exc})") from None
    js: str = get_plotlyjs()
    return js


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _script_json(value: Any) -> str:
    """JSON safe to embed inside a <script> element (non-finite numbers become null)."""
    text = json.dumps(_finite(value), allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_TICKS = re.compile(r"`([^`]+)`")


def _codeticks(text: str) -> markupsafe.Markup:
    """Escape ``text`` and show its `backticked` parts as code."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(_TICKS.sub(r"<code>\1</code>", escaped))


@functools.cache
def _env() -> jinja2.Environment:
    return template_env()


def template_env(*extra: jinja2.BaseLoader) -> jinja2.Environment:
    """The report's Jinja environment (filters, globals, templates); ``extra`` loaders are
    searched first (``virtbench serve`` adds its pages, which extend ``report.html.j2``)."""
    base = jinja2.PackageLoader("virtbench.report", "templates")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([*extra, base]) if extra else base,
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["script_json"] = _script_json
    env.filters["fmt"] = report_data.fmt
    env.filters["codeticks"] = _codeticks
    from virtbench.report.fleet import group_cells, host_cells

    env.globals["fleet_cells"] = host_cells
    env.globals["fleet_group_cells"] = group_cells
    return env


def render(report: Report) -> str:
    charts: list[dict[str, Any]] = []

    def chart(fig: dict[str, Any]) -> str:
        charts.append(fig)
        return f"chart-{len(charts)}"

    template = _env().get_template("report.html.j2")
    js = markupsafe.Markup(plotly_js().replace("</script", "<\\/script"))
    html = template.render(r=report, chart=chart, plotly_js=js,
                           severity=report_data.SEVERITY_LABEL)
    return html


def render_documents(docs: Sequence[Document], *, title: str | None = None) -> str:
    return render(report_data.build(docs, title=title))
