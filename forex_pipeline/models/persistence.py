"""Save and load a TabularModel as compressed joblib of plain data.

The file holds a dict: format tag, the model spec (canonical form and hash), feature names, scaler
arrays, encoder state (not a pickled encoder), the fitted scikit-learn / LightGBM estimators with their
target scales, the combiners as arrays, hyperparameters and metrics. Loading checks the format and that
the file belongs to the spec it is loaded for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from forex_pipeline.features.preprocessing import Scaler
from forex_pipeline.models.combiners import combiners_from_state, combiners_to_state
from forex_pipeline.models.encoders import encoder_from_state
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.training import FittedRegressor, TabularModel

FORMAT = "forex_pipeline.tabular/1"
FILE_SUFFIX = ".joblib"


class ModelFormatError(ValueError):
    """A model file does not hold a tabular model of the expected spec; the message names the file."""


def to_state(model: TabularModel) -> dict[str, Any]:
    """The plain-data form of `model` written to its file."""
    return {
        "format": FORMAT,
        "model_spec": model.model_spec.canonical(),
        "model_spec_hash": model.model_spec.hash,
        "feature_set_hash": model.feature_set_hash,
        "feature_names": list(model.feature_names),
        "ar_lag_columns": list(model.ar_lag_columns),
        "scaler": {"kind": model.scaler.kind, "center": model.scaler.center, "scale": model.scaler.scale},
        "encoder": model.encoder.to_state(),
        "intervals": [list(iv) for iv in model.intervals],
        "members": [
            [{"interval": list(iv), "estimator": reg.estimator, "y_scale": reg.y_scale} for iv, reg in member.items()]
            for member in model.members
        ],
        "combiners": {method: combiners_to_state(c) for method, c in model.combiners.items()},
        "hyperparameters": dict(model.hyperparameters),
        "metrics": dict(model.metrics),
        "compression": int(model.compression),
    }


def from_state(state: dict[str, Any], spec: ModelSpec, source: str) -> TabularModel:
    """Rebuild a TabularModel; refuse a state of another format or another model spec."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ModelFormatError(f"model file {source} is not a {FORMAT} model file (found {found!r})")
    if state["model_spec_hash"] != spec.hash:
        raise ModelFormatError(
            f"model file {source} holds model_spec {state['model_spec_hash'][:8]} "
            f"({state['model_spec'].get('model_type')}), not the requested {spec.hash[:8]} ({spec.model_type})"
        )
    scaler = state["scaler"]
    return TabularModel(
        model_spec=spec,
        feature_set_hash=str(state["feature_set_hash"]),
        feature_names=tuple(state["feature_names"]),
        ar_lag_columns=tuple(int(i) for i in state["ar_lag_columns"]),
        scaler=Scaler(kind=scaler["kind"], center=np.asarray(scaler["center"]), scale=np.asarray(scaler["scale"])),
        encoder=encoder_from_state(state["encoder"]),
        intervals=tuple((int(s), int(e)) for s, e in state["intervals"]),
        members=[
            {(int(r["interval"][0]), int(r["interval"][1])): FittedRegressor(r["estimator"], float(r["y_scale"]))
             for r in member}
            for member in state["members"]
        ],
        combiners={method: combiners_from_state(c) for method, c in state["combiners"].items()},
        hyperparameters=dict(state["hyperparameters"]),
        metrics=dict(state["metrics"]),
        compression=int(state["compression"]),
    )


def save(model: TabularModel, path: Path) -> None:
    """Write `model` to `path` as joblib compressed at the model's configured level."""
    if not isinstance(model, TabularModel):
        raise TypeError(f"expected a TabularModel, got {type(model).__name__}")
    joblib.dump(to_state(model), Path(path), compress=("zlib", model.compression) if model.compression else 0)


def load(path: Path, spec: ModelSpec) -> TabularModel:
    """Read a model file written by `save` for `spec` (verify its sha256 first: joblib unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        state = joblib.load(path)
    except Exception as exc:
        raise ModelFormatError(f"model file {path} cannot be read as a joblib model file: {exc}") from exc
    return from_state(state, spec, str(path))
