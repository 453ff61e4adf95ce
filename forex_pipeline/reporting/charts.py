"""The regime-bests dashboard charts (PNG) and labels, from plain DataFrames (tables are in reporting.tables).

Used by the `regime_bests` asset (shown in the Dagster UI) and by the CLI; no Dagster here.
"""

from __future__ import annotations

import struct
from pathlib import Path

from typing import TYPE_CHECKING

from forex_pipeline.io import atomic_write
from forex_pipeline.keys import REGIME_UNCLASSIFIED

if TYPE_CHECKING:   # numpy and pandas load with the charts that use them: the CLI labels configs without them
    import numpy as np
    import pandas as pd

REGIME_COLOURS = {
    "bull_trending": "tab:green",
    "bear_trending": "tab:red",
    "volatile_ranging": "tab:orange",
    "calm_ranging": "tab:blue",
    REGIME_UNCLASSIFIED: "tab:gray",
}


def inference_config_label(row: "pd.Series | dict") -> str:
    """`direct/mean c>=0.6 lb=20`: prediction method, ensemble method, confidence threshold, lookback."""
    return (
        f"{row['prediction_method']}/{row['ensemble_method']}"
        f" c>={row['confidence_threshold']:g} lb={int(row['lookback_window'])}"
    )


# The PNG text entry that holds the hash of what a chart was drawn from (reporting.dashboard.chart_once).
INPUTS_KEY = "forex_pipeline inputs"


def _save(fig, path: Path, key: str | None = None) -> Path:  # noqa: ANN001 - matplotlib Figure
    import matplotlib.pyplot as plt

    metadata = {INPUTS_KEY: key} if key else None
    try:
        return atomic_write(path, lambda temp: fig.savefig(temp, dpi=90, bbox_inches="tight", format="png", metadata=metadata))
    finally:
        plt.close(fig)


def drawn_from(path: Path) -> str | None:
    """The inputs hash a chart PNG was saved with (its INPUTS_KEY text chunk, written before the image
    data), or None: no file, not a PNG, no such entry."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while len(head := handle.read(8)) == 8:
                size, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return None
                data = handle.read(size + 4)[:size]
                name, _, value = data.partition(b"\0")
                if kind == b"tEXt" and name == INPUTS_KEY.encode("latin-1"):
                    return value.decode("latin-1")
    except OSError:
        return None
    return None


def _figure(width: float = 9, height: float = 4):  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def regime_timeline_chart(
    timestamps: pd.DatetimeIndex, close: np.ndarray, labels: np.ndarray, path: Path, title: str, key: str | None = None
) -> Path:
    """Close price coloured by the regime label of each bar."""
    fig, ax = _figure()
    names = sorted(set(labels.tolist()))
    spare = iter(["tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"])
    for name in names:
        mask = labels == name
        colour = REGIME_COLOURS.get(name) or next(spare, "black")
        ax.scatter(timestamps[mask], close[mask], s=2, color=colour, label=name)
    ax.set_title(title)
    ax.legend(markerscale=5, fontsize=8, loc="best")
    return _save(fig, path, key)


def heatmap_chart(table: pd.DataFrame, path: Path, key: str | None = None) -> Path:
    """Model x regime heatmap of the best Sharpe (rows: models, columns: regimes)."""
    import numpy as np

    fig, ax = _figure(9, max(2.5, 0.35 * len(table) + 1))
    values = table.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="RdYlGn")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=7)
    fig.colorbar(image, ax=ax, label="best Sharpe")
    ax.set_title("Best Sharpe per model and regime")
    return _save(fig, path, key)


def risk_return_chart(frame: pd.DataFrame, path: Path, key: str | None = None) -> Path:
    """Max drawdown against total return of each model's best configuration over the whole test segment."""
    fig, ax = _figure(7, 5)
    kept = frame["kept"].astype(bool)
    ax.scatter(frame.loc[~kept, "max_drawdown"], frame.loc[~kept, "total_return"], s=12, color="tab:gray", label="deleted")
    ax.scatter(frame.loc[kept, "max_drawdown"], frame.loc[kept, "total_return"], s=24, color="tab:green", label="kept")
    ax.set_xlabel("max drawdown")
    ax.set_ylabel("total return")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend()
    ax.set_title("Risk vs return (best inference configuration per model)")
    return _save(fig, path, key)


def equity_chart(curves: dict[str, pd.Series], path: Path, key: str | None = None) -> Path:
    """Equity curves (cumulative simple return) of the regime bests on their test segments."""
    fig, ax = _figure()
    for label, curve in curves.items():
        ax.plot(curve.index, curve.to_numpy(), label=label, linewidth=1)
    ax.set_title("Equity of the regime bests (test segment, after costs)")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path, key)
