"""No feature at row t may change when bar data after t changes (DESIGN.md section 5)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_pipeline.features.additional import ar_lag_features, compute_additional
from forex_pipeline.features.build import build_feature_matrix, compute_raw_features
from forex_pipeline.features.indicators import compute_indicators
from forex_pipeline.features.spec import ADDITIONAL_FEATURES, INDICATORS, FeatureSetSpec, Preprocessing
from forex_pipeline.features.splits import split_rows
from tests.features.helpers import assert_prefix_equal, perturb_after, random_bars

# base timeframe -> (bars, indicator timeframes): enough bars for the slowest timeframe to warm up.
SETUPS = {
    "15m": (2000, ("15m", "1h", "4h")),
    "1h": (1500, ("1h", "4h", "1d")),
}
BARS = {base: random_bars(n, base, seed=7) for base, (n, _) in SETUPS.items()}
EXAMPLES = settings(max_examples=15, deadline=None)

cases = st.tuples(st.sampled_from(sorted(SETUPS)), st.floats(0.05, 0.98), st.integers(0, 2**31 - 1))


def _cut(base: str, fraction: float) -> int:
    return int(fraction * (len(BARS[base]) - 2))


def _indicators(bars: pd.DataFrame, base: str) -> pd.DataFrame:
    timeframes = SETUPS[base][1]
    return compute_indicators(bars, base, {name: timeframes for name in INDICATORS})


def _spec(base: str, min_coverage: float = 0.0) -> FeatureSetSpec:
    return FeatureSetSpec(
        symbol="EURUSD",
        base_timeframe=base,
        days_history=3650,
        as_of=datetime(2030, 1, 1, tzinfo=timezone.utc),
        indicator_timeframes={name: SETUPS[base][1] for name in INDICATORS},
        additional_features=ADDITIONAL_FEATURES,
        preprocessing=Preprocessing(warmup_bars=50, min_coverage=min_coverage),
    )


@EXAMPLES
@given(cases)
def test_no_lookahead_indicators(case: tuple[str, float, int]) -> None:
    base, fraction, seed = case
    cut = _cut(base, fraction)
    bars = BARS[base]
    before = _indicators(bars, base)
    after = _indicators(perturb_after(bars, cut, seed), base)
    assert before.shape[1] == 16 * len(SETUPS[base][1])
    assert_prefix_equal(before, after, cut)


@EXAMPLES
@given(cases)
def test_no_lookahead_multi_timeframe_join_on_truncated_history(case: tuple[str, float, int]) -> None:
    base, fraction, _ = case
    cut = _cut(base, fraction)
    bars = BARS[base]
    full = _indicators(bars, base)
    truncated = _indicators(bars.iloc[: cut + 1], base)
    assert_prefix_equal(full, truncated, cut)
    if cut >= 600:
        assert full["rsi_14_4h"].iloc[: cut + 1].notna().any()


@EXAMPLES
@given(cases)
def test_no_lookahead_additional_features(case: tuple[str, float, int]) -> None:
    base, fraction, seed = case
    cut = _cut(base, fraction)
    bars = BARS[base]
    perturbed = perturb_after(bars, cut, seed)
    pre = Preprocessing(rv_window=20)
    before = compute_additional(bars, base, ADDITIONAL_FEATURES, pre)
    after = compute_additional(perturbed, base, ADDITIONAL_FEATURES, pre)
    assert set(before) == set(ADDITIONAL_FEATURES)
    for family in ADDITIONAL_FEATURES:
        assert_prefix_equal(before[family], after[family], cut)
    truncated = compute_additional(bars.iloc[: cut + 1], base, ADDITIONAL_FEATURES, pre)
    for family in ADDITIONAL_FEATURES:
        assert_prefix_equal(before[family], truncated[family], cut, exact=False)
    lags_before = ar_lag_features(bars["close"].to_numpy(), 5)
    lags_after = ar_lag_features(perturbed["close"].to_numpy(), 5)
    assert_prefix_equal(lags_before, lags_after, cut)


@EXAMPLES
@given(cases)
def test_no_lookahead_raw_features(case: tuple[str, float, int]) -> None:
    base, fraction, seed = case
    cut = _cut(base, fraction)
    spec = _spec(base)
    before = compute_raw_features(spec, BARS[base]).frame
    after = compute_raw_features(spec, perturb_after(BARS[base], cut, seed)).frame
    assert_prefix_equal(before, after, cut)


@settings(max_examples=10, deadline=None)
@given(cases)
def test_no_lookahead_feature_matrix(case: tuple[str, float, int]) -> None:
    base, fraction, seed = case
    bars = BARS[base]
    spec = _spec(base, min_coverage=0.0)
    before = build_feature_matrix(spec, bars)
    first = bars.index.get_loc(before.timestamps[0])
    cut = first + int(fraction * (len(bars) - 2 - first))
    after = build_feature_matrix(spec, perturb_after(bars, cut, seed))
    assert before.feature_names == after.feature_names
    known = bars.index[cut]
    rows_before = before.timestamps <= known
    rows_after = after.timestamps <= known
    assert rows_before.sum() > 0
    assert before.timestamps[rows_before].equals(after.timestamps[rows_after])
    np.testing.assert_array_equal(before.X[rows_before], after.X[rows_after])
    np.testing.assert_array_equal(before.close[rows_before], after.close[rows_after])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 500),
    st.floats(0.05, 0.9),
    st.floats(0.05, 0.9),
)
def test_no_lookahead_splits(n_rows: int, horizon: int, train_fraction: float, validation_fraction: float) -> None:
    if train_fraction + validation_fraction >= 0.99:
        validation_fraction = 0.98 - train_fraction
    try:
        splits = split_rows(n_rows, horizon, train_fraction, validation_fraction)
    except ValueError as error:
        assert f"n_rows={n_rows}" in str(error) and f"horizon={horizon}" in str(error)
        return
    train, validation, test = splits.train, splits.validation, splits.test
    assert len(train) and len(validation) and len(test)
    assert train.max() + horizon < validation.min()
    assert validation.max() + horizon < test.min()
    assert train.max() + horizon < n_rows and validation.max() + horizon < n_rows
    assert test.max() == n_rows - 1
    for rows in (train, validation, test):
        assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))


@pytest.mark.parametrize(
    ("base", "timeframes", "first_cut", "n_cuts"),
    [("15m", ("30m", "1h", "4h"), 1000, 32), ("1h", ("4h", "1d"), 1150, 48)],
)
def test_no_lookahead_multi_timeframe_join_at_every_offset(
    base: str, timeframes: tuple[str, ...], first_cut: int, n_cuts: int
) -> None:
    bars = BARS[base].iloc[: first_cut + n_cuts + 50]
    spec = {name: timeframes for name in INDICATORS}
    full = compute_indicators(bars, base, spec)
    assert full.iloc[first_cut].notna().all()
    for cut in range(first_cut, first_cut + n_cuts):
        assert_prefix_equal(full, compute_indicators(bars.iloc[: cut + 1], base, spec), cut)
