"""``admf report SWEEP_DIR``: the page of a sweep.

A heat map of the objective over the first two parameters (the best value over the others),
the distribution of the objective over the trials that ran, the trials that failed or were
skipped, the best trial's tear sheet (``best-trial.html`` beside the page, shown in a frame;
built by ``admf.report`` from the trial's log, or from a re-run of that trial when the sweep
kept summaries only), and for a walk-forward the stitched out-of-sample curve and the
parameters chosen per window. Plotly figures; plotly.js is embedded, the page works offline.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc

from admf.data.bars import ColumnMap
from admf.data.source import ReadOptions
from admf.sweep.run import SweepResult, load
from admf.sweep.table import PARAM_PREFIX, RUNS_DIR, params_of

PAGE_NAME: Final[str] = "report.html"
BEST_NAME: Final[str] = "best-trial.html"
_CSS: Final[str] = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;"
    "padding:3px 8px;text-align:right}iframe{width:100%;height:1400px;border:1px solid #ccc}"
)


def _div(fig: go.Figure, first: bool) -> str:
    fig.update_layout(template="plotly_white", height=420, margin={"l": 60, "r": 20, "t": 40})
    text: str = fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False})
    return text


def _heatmap(table: pa.Table, objective: str, names: list[str], sign: float) -> go.Figure:
    ok = table.filter(pc.equal(table["status"], "ok")).to_pylist()
    x_name, y_name = names[0], names[1]
    xs = sorted({r[PARAM_PREFIX + x_name] for r in table.to_pylist()})
    ys = sorted({r[PARAM_PREFIX + y_name] for r in table.to_pylist()})
    z = np.full((len(ys), len(xs)), np.nan)
    for r in ok:
        v = r.get(objective)
        if v is None or math.isnan(v):
            continue
        i, j = ys.index(r[PARAM_PREFIX + y_name]), xs.index(r[PARAM_PREFIX + x_name])
        # Several trials per cell (more than two parameters): the best of them.
        if math.isnan(z[i, j]) or sign * v > sign * z[i, j]:
            z[i, j] = v
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[str(v) for v in xs], y=[str(v) for v in ys], colorbar={"title": objective}
        )
    )
    fig.update_layout(title=f"{objective} over {x_name} and {y_name}")
    fig.update_xaxes(title=x_name, type="category")
    fig.update_yaxes(title=y_name, type="category")
    return fig


def _line(table: pa.Table, objective: str, name: str) -> go.Figure:
    ok = table.filter(pc.equal(table["status"], "ok"))
    fig = go.Figure(
        go.Scatter(
            x=ok[PARAM_PREFIX + name].to_pylist(), y=ok[objective].to_pylist(), mode="markers"
        )
    )
    fig.update_layout(title=f"{objective} over {name}", xaxis_title=name, yaxis_title=objective)
    return fig


def _histogram(values: list[float], objective: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=min(50, max(5, len(values) // 2))))
    fig.update_layout(title=f"distribution of {objective}", xaxis_title=objective)
    return fig


def _rows(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d"))
    return str(value)


def _best_tear_sheet(result: SweepResult, spec: dict[str, Any], out: Path) -> Path | None:
    best = result.best
    if best is None:
        return None
    run_dir = result.path / RUNS_DIR / f"run={best.trial}"
    if run_dir.is_dir():
        from admf.reporting import write_log_report

        return write_log_report(run_dir, out)
    from admf.backtest import BacktestSettings, backtest
    from admf.reporting import write_result_report

    # Summaries only: the trial is deterministic, so running it again gives its run.
    data = spec["data"]
    if best.window is not None:
        data = sorted(str(p) for p in (result.path / "data" / f"w{best.window:03d}-test").iterdir())
    settings = BacktestSettings.from_dict({**spec["settings"], "seed": best.seed})
    run = backtest(spec["strategy"], data, best.params, settings, read=_read_options(spec))
    return write_result_report(run, out)


def _read_options(spec: dict[str, Any]) -> ReadOptions | None:
    """The sweep's ``ReadOptions`` from its ``sweep.json`` (``ReadOptions.to_dict``)."""
    values = spec.get("read")
    if values is None:
        return None
    columns = values["columns"]
    return ReadOptions(
        tz=values["tz"],
        session_close=dt.time.fromisoformat(values["session_close"]),
        columns=ColumnMap(**columns) if columns else None,
        negative_prices=values["negative_prices"],
    )


def write_sweep_report(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> Path:
    """Writes the page of the sweep at ``path`` (default ``SWEEP_DIR/report.html``)."""
    result = load(path)
    spec = json.loads((result.path / "sweep.json").read_text())
    objective: str = spec["objective"]
    sign = 1.0 if spec["direction"] == "max" else -1.0
    table = result.table
    if "role" in table.column_names:
        table = table.filter(pc.equal(table["role"], "train"))
    names = params_of(table)
    sections = [f"<h1>admf sweep: {html.escape(spec['strategy'])}</h1>"]
    statuses = table["status"].to_pylist()
    sections.append(
        f"<p>{len(statuses)} trials: {statuses.count('ok')} ok, {statuses.count('failed')} "
        f"failed, {statuses.count('invalid')} invalid; objective: {html.escape(objective)} "
        f"({'higher' if sign > 0 else 'lower'} is better)</p>"
    )
    scored = objective in table.column_names  # no statistics when no trial ran
    values = [
        v
        for v, status in zip(table[objective].to_pylist() if scored else [], statuses, strict=False)
        if status == "ok" and v is not None and not math.isnan(v)
    ]
    plotted = 0  # plotly.js is embedded once, with the first figure
    if scored and names:
        fig = (
            _heatmap(table, objective, names, sign)
            if len(names) > 1
            else _line(table, objective, names[0])
        )
        sections += ["<h2>Objective over the parameters</h2>", _div(fig, plotted == 0)]
        plotted += 1
    if values:
        sections += ["<h2>Distribution</h2>", _div(_histogram(values, objective), plotted == 0)]
        plotted += 1
    wf = result.walk_forward
    if wf is not None:
        curve = go.Figure(
            go.Scatter(x=wf.equity["ts"].to_pylist(), y=wf.equity["equity"].to_pylist())
        )
        curve.update_layout(title="stitched out-of-sample equity", yaxis_title="equity")
        sections += [
            "<h2>Walk-forward: out-of-sample equity</h2>",
            _div(curve, plotted == 0),
            "<h2>Walk-forward: windows</h2>",
            _rows(wf.windows.to_pylist(), wf.windows.column_names),
        ]
    bad = table.filter(pc.not_equal(table["status"], "ok")).to_pylist()
    if bad:
        sections += ["<h2>Failed and skipped trials</h2>", _rows(bad, ["run", "status", "reason"])]
    out = Path(output) if output is not None else result.path / PAGE_NAME
    sheet = _best_tear_sheet(result, spec, out.parent / BEST_NAME)  # beside the page: linked
    if sheet is not None and result.best is not None:
        title = "best test window" if wf is not None else "best trial"
        sections += [
            f"<h2>Tear sheet of the {title}: {html.escape(result.best.trial)} "
            f"{html.escape(json.dumps(result.best.params))}</h2>",
            f'<iframe src="{html.escape(sheet.name)}"></iframe>',
        ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>admf sweep</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )
    out.write_text(page, encoding="utf-8")
    return out
