"""The explorer's charts as Plotly figures: regime detection over time, model x regime heatmap, risk vs
return by regime. Every point or cell carries its regime (one trace per regime, its name in the legend)
and its model in the hover text; the same data as the PNG charts of reporting/charts.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forex_pipeline.keys import REGIME_UNCLASSIFIED

# reporting/charts.py REGIME_COLOURS in CSS colours (matplotlib's tab10), so both UIs colour a regime alike.
REGIME_COLOURS: dict[str, str] = {
    "bull_trending": "#2ca02c",
    "bear_trending": "#d62728",
    "volatile_ranging": "#ff7f0e",
    "calm_ranging": "#1f77b4",
    REGIME_UNCLASSIFIED: "#7f7f7f",
}
SPARE_COLOURS: tuple[str, ...] = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
MAX_TIMELINE_POINTS = 20_000


def regime_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per regime: the fixed ones for the built-ins and `unclassified`, spares for custom regimes."""
    spare = iter(SPARE_COLOURS * (1 + len(names) // len(SPARE_COLOURS)))
    return {name: REGIME_COLOURS.get(name) or next(spare) for name in names}


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=260, margin={"t": 30, "b": 10})
    return figure


def timeline_figure(timestamps: pd.DatetimeIndex, close: np.ndarray, labels: np.ndarray, title: str) -> go.Figure:
    """Close price coloured by each bar's regime label: one trace (and legend entry) per regime, in
    order of first appearance; thinned evenly to MAX_TIMELINE_POINTS bars so the page stays light."""
    labels = np.asarray(labels).astype(str)
    close = np.asarray(close, dtype=np.float64)
    step = max(1, int(np.ceil(len(labels) / MAX_TIMELINE_POINTS)))
    keep = np.arange(0, len(labels), step)
    names = list(dict.fromkeys(labels.tolist()))
    colours = regime_colours(names)
    figure = go.Figure()
    for name in names:
        mask = labels[keep] == name
        share = float((labels == name).mean())
        figure.add_trace(
            go.Scattergl(
                x=timestamps[keep][mask], y=close[keep][mask], mode="markers", name=f"{name} ({share:.0%})",
                marker={"size": 3, "color": colours[name]}, hovertemplate=f"{name}<br>%{{x}}<br>close %{{y}}<extra></extra>",
            )
        )
    figure.update_layout(title=title, height=340, margin={"t": 40, "b": 30}, legend={"itemsizing": "constant"}, yaxis_title="close")
    return figure


def heatmap_figure(pivot: pd.DataFrame) -> go.Figure:
    """Best Sharpe per model (rows) and regime (columns), each cell labelled with its value."""
    if pivot.empty:
        return empty_figure("no backtests yet")
    values = pivot.to_numpy(dtype=float)
    text = [["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            z=values, x=[str(c) for c in pivot.columns], y=[str(i) for i in pivot.index], text=text, texttemplate="%{text}",
            colorscale="RdYlGn", zmid=0.0, colorbar={"title": "best Sharpe"},
            hovertemplate="model %{y}<br>regime %{x}<br>best Sharpe %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Best Sharpe per model and regime", height=max(260, 40 + 28 * len(pivot)), margin={"t": 40, "l": 10, "b": 30},
        yaxis={"automargin": True}, xaxis={"side": "top"},
    )
    return figure


def risk_return_figure(points: pd.DataFrame) -> go.Figure:
    """Each regime best's max drawdown (x) against its total return (y) in its regime, one trace per
    regime, each point labelled `#rank` with the model in its hover text (columns of
    store.regime_best_models.RISK_RETURN_COLUMNS plus `model`)."""
    if points.empty:
        return empty_figure("no regime bests yet")
    colours = regime_colours(list(dict.fromkeys(points["regime"].astype(str))))
    figure = go.Figure()
    for regime, group in points.groupby("regime", sort=False):
        figure.add_trace(
            go.Scatter(
                x=group["max_drawdown"], y=group["total_return"], mode="markers+text", name=str(regime),
                text=[f"{regime} #{int(r)}" for r in group["rank"]], textposition="top center",
                marker={"size": 11, "color": colours[str(regime)], "line": {"width": 1, "color": "#333"}},
                customdata=np.stack([group["model"].astype(str), group["score"].astype(float)], axis=1),
                hovertemplate=(
                    f"{regime}<br>%{{customdata[0]}}<br>max drawdown %{{x:.4f}}<br>total return %{{y:.4f}}"
                    "<br>Sharpe %{customdata[1]:.2f}<extra></extra>"
                ),
            )
        )
    figure.add_hline(y=0.0, line_width=0.5, line_color="black")
    figure.update_layout(
        title="Risk vs return by regime (each best's trades in its regime)", height=380, margin={"t": 40, "b": 30},
        xaxis_title="max drawdown", yaxis_title="total return",
    )
    return figure


def equity_figure(curve: pd.Series, title: str) -> go.Figure:
    """One equity curve (cumulative simple return after costs)."""
    figure = go.Figure(go.Scatter(x=curve.index, y=curve.to_numpy(), mode="lines", name="equity"))
    figure.update_layout(title=title, height=300, margin={"t": 40, "b": 30}, yaxis_title="equity (cumulative return)")
    return figure
