"""The `lightgbm` family: LGBMRegressor members, trained by the tabular member trainer.

lightgbm is imported only when a regressor is built, never at package import.
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
    "n_estimators": Param(200, int, low=1, high=20000),
    "learning_rate": Param(0.05, float, low=0.0, high=1.0, low_inclusive=False),
    "num_leaves": Param(15, int, low=2, high=4096),
    "max_depth": Param(-1, int, low=-1, high=64),
    "min_child_samples": Param(50, int, low=1),
    "subsample": Param(0.8, float, low=0.0, high=1.0, low_inclusive=False),
    "subsample_freq": Param(1, int, low=0),
    "colsample_bytree": Param(0.8, float, low=0.0, high=1.0, low_inclusive=False),
    "reg_lambda": Param(1.0, float, low=0.0),
    "n_jobs": Param(1, int, low=-1),
    "verbose": Param(-1, int),
}


def validate_hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    """The spec's hyperparameters with defaults filled; unknown or out-of-range values refused."""
    return resolve(spec, RULES)


def make_regressor(params: dict[str, Any], seed: int) -> Any:
    """An unfitted, deterministic LGBMRegressor seeded with `seed`."""
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**params, random_state=seed, deterministic=True, force_row_wise=True)


def train(matrix: FeatureMatrix, spec: ModelSpec, context: TrainingContext) -> TabularModel:
    """Train K gradient-boosting members."""
    return train_tabular(matrix, spec, context, validate_hyperparameters(spec), make_regressor)


# Every tabular family stores the same plain-data format (models/persistence.py).
save = persistence.save
load = persistence.load
