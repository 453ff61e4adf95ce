"""The explorer's charts label every point with its regime (one trace per regime) and its model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forex_pipeline.explorer import figures


def test_timeline_has_one_trace_per_regime_with_its_share_and_only_its_bars() -> None:
    index = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    labels = np.array(["calm_ranging", "calm_ranging", "quiet", "unclassified", "calm_ranging", "quiet"], dtype=object)
    figure = figures.timeline_figure(index, np.arange(6.0) + 1.0, labels, "t")
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"calm_ranging (50%)", "quiet (33%)", "unclassified (17%)"}
    assert list(traces["quiet (33%)"].y) == [3.0, 6.0]
    assert traces["calm_ranging (50%)"].marker.color == figures.REGIME_COLOURS["calm_ranging"]
    assert traces["quiet (33%)"].marker.color in figures.SPARE_COLOURS


def test_risk_return_labels_each_best_with_regime_and_rank_and_names_its_model() -> None:
    points = pd.DataFrame(
        {
            "regime": ["bull_trending", "bull_trending", "calm_ranging"], "rank": [1, 2, 1],
            "max_drawdown": [0.01, 0.02, 0.005], "total_return": [0.03, -0.01, 0.02], "score": [1.5, 0.7, 2.0],
            "model": ["EURUSD 1h | ridge h1", "EURUSD 1h | rf h5", "EURUSD 1h | ridge h3"],
        }
    )
    figure = figures.risk_return_figure(points)
    by_name = {trace.name: trace for trace in figure.data}
    assert list(by_name["bull_trending"].text) == ["bull_trending #1", "bull_trending #2"]
    assert list(by_name["bull_trending"].y) == [0.03, -0.01]
    assert by_name["calm_ranging"].customdata[0][0] == "EURUSD 1h | ridge h3"


def test_heatmap_cells_carry_their_values_as_text() -> None:
    pivot = pd.DataFrame({"bull_trending": [1.234, np.nan], "calm_ranging": [-0.5, 2.0]}, index=["m1", "m2"])
    heat = figures.heatmap_figure(pivot).data[0]
    assert [list(row) for row in heat.text] == [["1.23", "-0.50"], ["", "2.00"]]
    assert list(heat.x) == ["bull_trending", "calm_ranging"] and list(heat.y) == ["m1", "m2"]
