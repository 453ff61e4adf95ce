"""The equity curve of one configuration (for the dashboard) agrees with the grid backtest."""

from __future__ import annotations

import numpy as np
import pytest

from forex_pipeline.backtest.inference_grid import inference_configs
from forex_pipeline.backtest.run import config_equity, run_inference_backtests
from forex_pipeline.settings import load_settings
from tests.backtest.test_run import TEST, FakeModel, make_matrix


@pytest.mark.parametrize("index", [0, 17, 58, 134])
def test_equity_curve_ends_at_the_backtest_total_return(index):
    settings = load_settings()
    model, matrix = FakeModel(), make_matrix(3)
    labels = np.full(matrix.n_rows, "unclassified", dtype=object)
    frame = run_inference_backtests(model, matrix, TEST, labels, settings, "EURUSD").frame
    config = inference_configs(settings.inference_grid)[index]
    row = frame[(frame["inference_config_hash"] == config.hash) & (frame["regime"] == "all")].iloc[0]
    equity = config_equity(model, matrix, TEST, config, settings, "EURUSD")
    assert len(equity) == len(TEST)
    assert equity.index.equals(matrix.timestamps[TEST])
    assert equity.iloc[-1] == pytest.approx(row["total_return"], abs=1e-12)
