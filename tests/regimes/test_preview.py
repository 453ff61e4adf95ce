"""A symbol's history labelled for `regimes test` and the explorer's "test on history"."""

from __future__ import annotations

import numpy as np
import pytest

from forex_pipeline.regimes.preview import bars_at, label_shares, split_row


def test_label_shares_count_every_label_most_frequent_first_and_list_regimes_without_bars() -> None:
    labels = np.array(["calm", "bull", "calm", "unclassified", "calm", "bull"], dtype=object)
    assert label_shares(labels) == [("calm", 3, 0.5), ("bull", 2, 2 / 6), ("unclassified", 1, 1 / 6)]
    shares = label_shares(labels, ["bull", "quiet", "calm"])
    assert shares[-1] == ("quiet", 0, 0.0) and sum(n for _, n, _ in shares) == 6


def test_split_row_is_the_first_bar_after_the_training_fraction() -> None:
    assert split_row(100, 0.6) == 60
    assert split_row(1, 0.6) == 1


def test_bars_at_refuses_a_timeframe_finer_than_the_source() -> None:
    from forex_pipeline.data.synthetic import generate_synthetic_bars

    raw = generate_synthetic_bars(3, 1).bars
    hourly = bars_at(raw, "1m", "1h")
    assert (hourly.index.to_series().diff().dropna() >= np.timedelta64(1, "h")).all()
    assert bars_at(hourly, "1h", "1h") is hourly
    with pytest.raises(ValueError, match="timeframe 15m is finer than the source bars \\(1h\\)"):
        bars_at(hourly, "1h", "15m")
