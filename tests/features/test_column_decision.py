"""Issue 10, item 8: the feature set's columns and first row are decided on the training period only,
so truncating or perturbing data after it changes neither (and the decision is in the metadata)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_pipeline.features.build import build_feature_matrix, training_period_end
from forex_pipeline.features.spec import ADDITIONAL_FEATURES, INDICATORS, FeatureSetSpec, Preprocessing
from tests.features.helpers import perturb_after, random_bars

N = 1400
BARS = random_bars(N, "1h", seed=3)
AS_OF = (BARS.index[-1] + pd.Timedelta(hours=1)).to_pydatetime()
SPEC = FeatureSetSpec(
    symbol="EURUSD",
    base_timeframe="1h",
    days_history=90,
    as_of=AS_OF,
    indicator_timeframes={name: ("1h", "4h") for name in INDICATORS},
    additional_features=ADDITIONAL_FEATURES,
    preprocessing=Preprocessing(warmup_bars=50, min_coverage=0.9),
)
TRAIN_FRACTION = 0.6
TRAIN_END = training_period_end(BARS.index[0], pd.Timestamp(AS_OF), TRAIN_FRACTION)
FIRST_AFTER = int(BARS.index.searchsorted(TRAIN_END))
REFERENCE = build_feature_matrix(SPEC, BARS, train_fraction=TRAIN_FRACTION)


def _no_volume_after(bars: pd.DataFrame, cut: int) -> pd.DataFrame:
    """Volume zero after `cut`: volume features turn NaN there, which whole-window coverage punished."""
    out = bars.copy()
    out.iloc[cut + 1 :, out.columns.get_loc("volume")] = 0.0
    return out


def test_reference_decides_on_the_training_period() -> None:
    decision = REFERENCE.metadata["column_decision"]
    assert decision["judged_rows"] == FIRST_AFTER and 0.55 * N < FIRST_AFTER < 0.65 * N
    assert decision["judged_until"] == TRAIN_END.isoformat()


@settings(max_examples=12, deadline=None)
@given(st.floats(0.0, 0.95), st.integers(0, 2**31 - 1), st.sampled_from(["truncate", "perturb", "no_volume"]))
def test_data_after_the_training_period_changes_neither_columns_nor_first_row(fraction: float, seed: int, how: str) -> None:
    cut = FIRST_AFTER + int(fraction * (N - 60 - FIRST_AFTER))
    if how == "truncate":
        bars = BARS.iloc[: cut + 1]
    elif how == "perturb":
        bars = perturb_after(BARS, cut, seed)
    else:
        bars = _no_volume_after(BARS, cut)
    other = build_feature_matrix(SPEC, bars, train_fraction=TRAIN_FRACTION)
    assert other.feature_names == REFERENCE.feature_names
    assert other.timestamps[0] == REFERENCE.timestamps[0]
    assert other.metadata["column_decision"] == REFERENCE.metadata["column_decision"]
    known = other.timestamps <= BARS.index[cut]
    np.testing.assert_array_equal(other.X[known], REFERENCE.X[: known.sum()])


def test_whole_window_judgement_would_have_moved_the_columns() -> None:
    """The test above can fail: judged over every row, zero volume after the training period drops
    the volume features (so the column set depended on the future)."""
    bars = _no_volume_after(BARS, FIRST_AFTER + 10)
    whole = build_feature_matrix(SPEC, bars, train_fraction=0.999)
    assert set(REFERENCE.feature_names) - set(whole.feature_names)
