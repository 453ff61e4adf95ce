"""Linear families: ridge, lasso and elasticnet (scikit-learn), trained by the tabular member trainer.

Alphas act on standardised features and a unit-scale target (training.py divides the target by its
training standard deviation), so the defaults are comparable across symbols and horizons.
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

RULES: dict[str, dict[str, Param]] = {
    "ridge": {
        "alpha": Param(1.0, float, low=0.0),
        "fit_intercept": Param(True, bool),
    },
    "lasso": {
        "alpha": Param(1e-3, float, low=0.0, low_inclusive=False),
        "fit_intercept": Param(True, bool),
        "max_iter": Param(5000, int, low=1),
        "tol": Param(1e-4, float, low=0.0, low_inclusive=False),
    },
    "elasticnet": {
        "alpha": Param(1e-3, float, low=0.0, low_inclusive=False),
        "l1_ratio": Param(0.5, float, low=0.0, high=1.0),
        "fit_intercept": Param(True, bool),
        "max_iter": Param(5000, int, low=1),
        "tol": Param(1e-4, float, low=0.0, low_inclusive=False),
    },
}


def validate_hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    """The spec's hyperparameters with defaults filled; unknown or out-of-range values refused."""
    if spec.model_type not in RULES:
        raise ValueError(f"model_type {spec.model_type!r} is not a linear family ({', '.join(RULES)})")
    return resolve(spec, RULES[spec.model_type])


def make_regressor(model_type: str, params: dict[str, Any], seed: int) -> Any:
    """An unfitted scikit-learn estimator for `model_type` (seed used where the solver is randomised)."""
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    if model_type == "ridge":
        return Ridge(alpha=params["alpha"], fit_intercept=params["fit_intercept"])
    if model_type == "lasso":
        return Lasso(alpha=params["alpha"], fit_intercept=params["fit_intercept"], max_iter=params["max_iter"],
                     tol=params["tol"], random_state=seed)
    return ElasticNet(alpha=params["alpha"], l1_ratio=params["l1_ratio"], fit_intercept=params["fit_intercept"],
                      max_iter=params["max_iter"], tol=params["tol"], random_state=seed)


def train(matrix: FeatureMatrix, spec: ModelSpec, context: TrainingContext) -> TabularModel:
    """Train K members of the linear family named by spec.model_type."""
    params = validate_hyperparameters(spec)
    return train_tabular(matrix, spec, context, params, lambda p, seed: make_regressor(spec.model_type, p, seed))


# Every tabular family stores the same plain-data format (models/persistence.py).
save = persistence.save
load = persistence.load
