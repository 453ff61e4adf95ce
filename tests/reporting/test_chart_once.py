"""A dashboard chart is drawn again only when what it shows changed (its inputs' hash rides in the PNG)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forex_pipeline.reporting import charts
from forex_pipeline.reporting.dashboard import chart_once


def test_a_chart_is_redrawn_only_when_its_inputs_change(tmp_path: Path) -> None:
    path = tmp_path / "dashboard" / "model_regime_heatmap.png"
    drawn: list[str] = []

    def heatmap(table: pd.DataFrame):  # noqa: ANN202
        def draw(key: str) -> Path:
            drawn.append(key)
            return charts.heatmap_chart(table, path, key)
        return draw

    table = pd.DataFrame({"bull": [1.0, 0.5], "calm": [0.2, float("nan")]}, index=["m1", "m2"])
    assert chart_once(path, {"table": table.to_csv()}, heatmap(table)) == path
    assert charts.drawn_from(path) == drawn[0]
    assert chart_once(path, {"table": table.to_csv()}, heatmap(table)) == path
    assert len(drawn) == 1                                           # same inputs: the PNG stands
    changed = table.assign(calm=[0.2, 0.3])
    chart_once(path, {"table": changed.to_csv()}, heatmap(changed))
    assert len(drawn) == 2 and charts.drawn_from(path) == drawn[1] != drawn[0]


def test_drawn_from_reads_nothing_from_missing_or_foreign_files(tmp_path: Path) -> None:
    assert charts.drawn_from(tmp_path / "none.png") is None
    (tmp_path / "text.png").write_text("not a png")
    assert charts.drawn_from(tmp_path / "text.png") is None
    plain = charts.risk_return_chart(
        pd.DataFrame({"max_drawdown": [-0.1, -0.2], "total_return": [0.05, -0.01], "kept": [True, False]}), tmp_path / "plain.png"
    )
    assert charts.drawn_from(plain) is None
