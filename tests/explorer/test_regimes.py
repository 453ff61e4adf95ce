"""The regime analysis view on a database without bests: empty grid, charts that say why, deploy refused
with the reason (the view with bests is exercised in tests/e2e/test_explorer_regimes.py)."""

from __future__ import annotations

import pytest

from forex_pipeline.errors import InputError
from forex_pipeline.explorer import regimes


def _annotation(figure) -> str:  # noqa: ANN001
    return figure.layout.annotations[0].text


def test_no_bests_gives_an_empty_grid_and_charts_that_say_so(context) -> None:
    assert regimes.grid_rows(context) == []
    assert _annotation(regimes.timeline(context, None)) == "no regime bests yet"
    assert _annotation(regimes.risk_return(context)) == "no regime bests yet"
    assert _annotation(regimes.heatmap(context)) == "no backtests yet"
    assert "not on disk" in _annotation(regimes.timeline(context, "SYNTH-1h-d150-00000000|ridge-none-h1-00000000"))


def test_deploy_without_bests_is_refused_with_the_reason(context) -> None:
    with pytest.raises(InputError, match="no kept regime best for any market"):
        regimes.bundle_bytes(context, None, None)
    with pytest.raises(LookupError, match="regime calm_ranging has no rank 1 any more"):
        regimes.find_best(context, "calm_ranging", 1)


def test_grid_columns_are_the_typed_bests_table_with_its_descriptions() -> None:
    from forex_pipeline.reporting.tables import BESTS_COLUMNS

    columns = regimes.grid_columns()
    assert [c["field"] for c in columns] == [c.name for c in BESTS_COLUMNS]
    assert all(c["headerTooltip"] for c in columns)
    assert {c["field"] for c in columns if "valueFormatter" in c} == {c.name for c in BESTS_COLUMNS if c.type == "float"}
