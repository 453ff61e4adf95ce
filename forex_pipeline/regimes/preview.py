"""A symbol's history labelled with a set of regimes: what `regimes label` / `regimes test` print and
what the explorer's "test on history" shows before a regime is saved.

The bars come from where the pipeline takes them (data/sources.py: an import, the finest sample file,
SYNTH) or from the second synthetic generator (MARKOV); they are resampled to the timeframe asked
and labelled over the whole history, the HMM fitted on the bars before the training split
(`training.train_fraction`, as the pipeline fits it); shares are counted on the bars after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from forex_pipeline.settings import RegimeSettings, Settings

# The second synthetic generator's symbol (forex_pipeline/data/synthetic_markov.py).
MARKOV_SYMBOL = "MARKOV"
MARKOV_DAYS = 365
MARKOV_SEED = 7


def load_symbol(symbol: str, settings: Settings) -> tuple[pd.DataFrame, str, str, pd.Series | None]:
    """(raw bars, their timeframe, where they came from, ground-truth M1 regimes or None).

    MARKOV is the second synthetic generator; SYNTH the first (data/sources.py); an import written
    by `data synth` carries its regimes file. Anything else is real data without ground truth.
    """
    from forex_pipeline.data.bar_store import import_path, read_regimes, regimes_path
    from forex_pipeline.data.sources import default_sample_dir, load_raw_bars, synthetic_bars
    from forex_pipeline.settings import normalize_symbol

    key = normalize_symbol(symbol)
    truth_file = regimes_path(settings.artifacts_dir, key)
    if key == MARKOV_SYMBOL and not import_path(settings.artifacts_dir, key).exists():
        from forex_pipeline.data.synthetic_markov import generate_markov_bars

        synthetic = generate_markov_bars(MARKOV_DAYS, MARKOV_SEED, symbol=key)
        return synthetic.bars, "1m", f"synthetic Markov-switching bars ({MARKOV_DAYS} days, seed {MARKOV_SEED})", synthetic.regimes
    raw = load_raw_bars(key, settings, default_sample_dir())
    truth = None
    if truth_file.exists():
        truth = read_regimes(truth_file)
    elif raw.source.startswith("synthetic"):
        truth = synthetic_bars().regimes
    return raw.bars, raw.timeframe, raw.source, truth


def bars_at(raw: pd.DataFrame, raw_timeframe: str, timeframe: str) -> pd.DataFrame:
    """`raw` resampled to `timeframe` (as it is when already there); ValueError for a finer timeframe."""
    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.timeframes import timeframe_minutes

    if raw_timeframe == timeframe:
        return raw
    if timeframe_minutes(timeframe) < timeframe_minutes(raw_timeframe):
        raise ValueError(f"timeframe {timeframe} is finer than the source bars ({raw_timeframe})")
    return resample_bars(raw, timeframe)


def split_row(n_bars: int, train_fraction: float) -> int:
    """The first bar after the training split: the HMM is fitted on the bars before it."""
    return max(1, int(np.floor(n_bars * train_fraction)))


def label_shares(labels: np.ndarray, regimes: Sequence[str] = ()) -> list[tuple[str, int, float]]:
    """(regime, bars, share) of each label, most frequent first (ties by name); the `regimes` that label
    no bar are listed too, with 0 bars (a regime whose bars all go to an earlier one shows as such)."""
    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    found = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    for name in regimes:
        found.setdefault(str(name), 0)
    total = max(sum(found.values()), 1)
    return sorted(((n, c, c / total) for n, c in found.items()), key=lambda x: (-x[1], x[0]))


@dataclass(frozen=True)
class RegimePreview:
    """A symbol's bars after the training split at one timeframe, their labels and the label shares."""

    symbol: str
    timeframe: str
    source: str
    detector: str
    timestamps: pd.DatetimeIndex
    close: np.ndarray
    labels: np.ndarray
    shares: list[tuple[str, int, float]]
    n_bars: int                     # the whole history labelled (the shares count the bars after the split)


def preview_regimes(symbol: str, timeframe: str, regimes: RegimeSettings, settings: Settings) -> RegimePreview:
    """Label `symbol`'s history at `timeframe` with `regimes`; the bars after the training split and their shares.

    Raises ValueError (or FileNotFoundError for a symbol without bars) naming what is wrong.
    """
    from forex_pipeline.data.timeframes import validate_timeframe
    from forex_pipeline.regimes.labels import label_regimes

    validate_timeframe(timeframe, "timeframe")
    raw, raw_timeframe, source, _ = load_symbol(symbol, settings)
    bars = bars_at(raw, raw_timeframe, timeframe)
    if len(bars) < 2:
        raise ValueError(f"{symbol} has {len(bars)} {timeframe} bar(s); too few to label")
    end = split_row(len(bars), settings.training.train_fraction)
    labels = np.asarray(
        label_regimes(bars["close"].to_numpy(), regimes, timeframe=timeframe, train_end=end, timestamps=bars.index), dtype=object
    )
    return RegimePreview(
        symbol=symbol, timeframe=timeframe, source=source, detector=regimes.detector,
        timestamps=bars.index[end:], close=bars["close"].to_numpy()[end:], labels=labels[end:],
        shares=label_shares(labels[end:], list(regimes.definitions)), n_bars=len(bars),
    )
