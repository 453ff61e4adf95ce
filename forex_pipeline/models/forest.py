"""The `rf` family: scikit-learn RandomForestRegressor members, trained by the tabular member trainer.

max_features defaults to 0.33 (a third of the features per split, the usual choice for regression
forests): it decorrelates the trees and cuts fitting time about threefold against all features.
"""

from __future__ import annotations

from typing import Any

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models import persistence
from forex_pipeline.models.context import TrainingContext
from forex_pipeline.models.hyperparameters import Param, resolve
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.training import TabularModel, train_tabular

FILE_SUFFIX = persistence.FILE_SUFFIX

RULES: dict[str, Param] = {
    "n_estimators": Param(100, int, low=1, high=5000),
    "max_depth": Param(6, int, low=1, high=64, allow_none=True),
    "min_samples_leaf": Param(20, int, low=1),
    "max_features": Param(0.33, float, low=0.0, high=1.0, low_inclusive=False),
    "bootstrap": Param(True, bool),
    "n_jobs": Param(1, int, low=-1),
}


def validate_hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    """The spec's hyperparameters with defaults filled; unknown or out-of-range values refused."""
    return resolve(spec, RULES)


def make_regressor(params: dict[str, Any], seed: int) -> Any:
    """An unfitted RandomForestRegressor seeded with `seed`."""
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=params["n_estimators"], max_depth=params["max_depth"],
        min_samples_leaf=params["min_samples_leaf"], max_features=params["max_features"],
        bootstrap=params["bootstrap"], n_jobs=params["n_jobs"], random_state=seed,
    )


def train(matrix: FeatureMatrix, spec: ModelSpec, context: TrainingContext) -> TabularModel:
    """Train K random-forest members."""
    return train_tabular(matrix, spec, context, validate_hyperparameters(spec), make_regressor)


# Every tabular family stores the same plain-data format (models/persistence.py).
save = persistence.save
load = persistence.load
