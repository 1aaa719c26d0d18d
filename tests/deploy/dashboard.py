"""Reading the Grafana dashboard's PromQL: every query, parsed by a real PromQL parser
(promql-parser, the Rust parser's Python binding), and the metric names it selects.

Grafana interpolates its variables before Prometheus sees a query, so we do the same: the built-in
intervals become a duration, and any other `$variable` becomes `.*` (dashboard variables are only used
inside regex label matchers here; one used anywhere else makes the query fail to parse, loudly).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pricer.json"

_BUILTIN_INTERVALS = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?::\w+)?\}?")
_VARIABLE = re.compile(r"\$\{?\w+(?::\w+)?\}?|\[\[\w+\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*\w+\s*\)\s*$", re.S)
_LABEL_VALUES_NO_METRIC = re.compile(r"^\s*label_values\(\s*\w+\s*\)\s*$")
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    where: str  # panel title / refId, or the variable's name
    expr: str


def load(path: Path = DASHBOARD) -> dict:
    return json.loads(path.read_text())


def iter_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # rows nest their panels when collapsed


def queries(dashboard: dict) -> list[Query]:
    """Every PromQL expression in the panels' targets and in the query variables."""
    found = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append(Query(f"{panel.get('title')} / {target.get('refId')}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if not text or _LABEL_VALUES_NO_METRIC.match(text):
            continue
        if m := _LABEL_VALUES.match(text):
            text = m["selector"]
        elif m := _QUERY_RESULT.match(text):
            text = m["expr"]
        found.append(Query(f"variable {variable.get('name')}", text))
    return found


def interpolate(expr: str) -> str:
    """What Grafana sends to Prometheus, near enough to parse it."""
    return _VARIABLE.sub(".*", _BUILTIN_INTERVALS.sub("5m", expr))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects. Raises ValueError if it does not parse, or if
    a selector has no fixed name (a regex on __name__ cannot be checked against the service)."""
    import promql_parser

    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            if name is None:
                fixed = [m.value for m in node.matchers.matchers if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal]
                if not fixed:
                    raise ValueError(f"selector without a fixed metric name in {expr!r}")
                name = fixed[0]
            names.add(name)
        return True

    promql_parser.walk(promql_parser.parse(interpolate(expr)), visit)
    return names


def unknown_metrics(found: list[Query], exposed: set[str]) -> dict[str, list[str]]:
    """Metric names the queries use that are not in `exposed`, with where each is used."""
    missing: dict[str, list[str]] = {}
    for query in found:
        for name in sorted(metric_names(query.expr) - exposed):
            missing.setdefault(name, []).append(query.where)
    return missing


def exposed_names(exposition: str) -> set[str]:
    """Every series name a /metrics page declares, as PromQL would select it: a family with HELP/TYPE
    lines counts even before it has a sample (a labelled counter nobody incremented yet), with the
    names its type produces (counter: _total; histogram: _bucket, _sum, _count; ...)."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
