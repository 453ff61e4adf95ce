"""The tabular member trainer shared by the classical families (ridge, lasso, elasticnet, rf, lightgbm).

Pipeline, fitted on the training segment only: scaler (features.preprocessing.fit_scaler) -> encoder
(models.encoders) -> K members. A member is a set of regressors on the same resampled training rows,
one per distinct target interval (start, end) of log(close[t+end] / close[t+start]):
- (0, horizon) for `direct`;
- (0, 1) for `recursive`, iterated `horizon` times;
- each sub-interval of features.targets.direct_multi_intervals for `direct_multi` (their sum).
Identical intervals (e.g. every method when horizon is 1) share one regressor.

Members: member 0 fits all training rows; member k >= 1 fits a moving-block bootstrap of them
(block length max(horizon, 10), so overlapping forward returns stay together) and, for the
randomised families, its own seed. So the deterministic linear families differ by resample only.

Targets are divided by their training standard deviation before fitting and multiplied back after
predicting, so hyperparameters such as lasso's alpha act on unit-scale returns.

Recursive: the raw (unscaled) feature rows are copied, the `ret_lag_*` columns
(FeatureMatrix.ar_lag_columns) are shifted by one lag and ret_lag_1 set to the member's own one-step
forecast, then scaler and encoder are applied again before the next step; other features stay at
their value at t. Every step is vectorised across rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.preprocessing import Scaler, fit_scaler
from forex_pipeline.features.splits import split_rows
from forex_pipeline.features.targets import direct_multi_intervals, interval_log_return
from forex_pipeline.models.base import ENSEMBLE_METHODS, PREDICTION_METHODS, Combiners
from forex_pipeline.models.combiners import combine, fit_combiners
from forex_pipeline.models.context import Deadline, ModelSpecError, TrainingContext
from forex_pipeline.models.encoders import Encoder, fit_encoder
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.settings import Settings

Interval = tuple[int, int]
RegressorFactory = Callable[[int], Any]   # seed -> unfitted estimator with fit(X, y) / predict(X)

MIN_TRAIN_ROWS = 20
MIN_VALIDATION_ROWS = 2
MIN_TEST_ROWS = 1
MIN_BLOCK_LENGTH = 10


@dataclass(frozen=True)
class FittedRegressor:
    """An estimator fitted on target / y_scale; `predict` returns forecasts in log-return units."""

    estimator: Any
    y_scale: float

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict(Z), dtype=np.float64) * self.y_scale


@dataclass
class TabularModel:
    """A trained classical model: scaler, encoder and K members of interval regressors (a TrainedModel)."""

    model_spec: ModelSpec
    feature_set_hash: str
    feature_names: tuple[str, ...]
    ar_lag_columns: tuple[int, ...]
    scaler: Scaler
    encoder: Encoder
    intervals: tuple[Interval, ...]                  # direct_multi sub-intervals, in order
    members: list[dict[Interval, FittedRegressor]]
    combiners: dict[str, Combiners]
    hyperparameters: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    compression: int = 3

    @property
    def n_members(self) -> int:
        return len(self.members)

    def encode(self, X_raw: np.ndarray) -> np.ndarray:
        """Raw feature rows -> the representation the regressors were trained on."""
        return self.encoder.transform(self.scaler.transform(X_raw))

    def _check_inputs(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        if method not in PREDICTION_METHODS:
            raise ValueError(f"prediction method {method!r} is unknown; known: {', '.join(PREDICTION_METHODS)}")
        if tuple(matrix.feature_names) != self.feature_names:
            raise ValueError(
                f"feature matrix {matrix.feature_set_hash[:8]} has other feature_names than the model was "
                f"trained on (feature set {self.feature_set_hash[:8]})"
            )
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"rows must be a 1-D integer array, got dtype {rows.dtype} shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= matrix.n_rows):
            raise ValueError(f"rows must lie in [0, {matrix.n_rows}), got [{rows.min()}, {rows.max()}]")
        return rows.astype(np.int64)

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        """(K, len(rows)) forecasts of the forward `horizon`-bar log return, from data up to each row."""
        rows = self._check_inputs(matrix, rows, method)
        return predict_raw(self, matrix.X[rows], method)


def predict_raw(model: TabularModel, X_raw: np.ndarray, method: str, deadline: Deadline | None = None) -> np.ndarray:
    """(K, n) member forecasts for raw feature rows `X_raw` with prediction method `method`."""
    out = np.empty((model.n_members, X_raw.shape[0]), dtype=np.float64)
    if X_raw.shape[0] == 0:
        return out
    horizon = model.model_spec.horizon
    if method == "recursive":
        for k, member in enumerate(model.members):
            out[k] = recursive_forecast(
                member[(0, 1)].predict, model.encode, X_raw, model.ar_lag_columns, horizon, deadline
            )
        return out
    Z = model.encode(X_raw)
    intervals = ((0, horizon),) if method == "direct" else model.intervals
    for k, member in enumerate(model.members):
        out[k] = sum(member[interval].predict(Z) for interval in intervals)
    return out


def recursive_forecast(
    one_step: Callable[[np.ndarray], np.ndarray],
    encode: Callable[[np.ndarray], np.ndarray],
    X_raw: np.ndarray,
    ar_lag_columns: tuple[int, ...],
    horizon: int,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """Sum of `horizon` one-step forecasts, each fed back as ret_lag_1 (older lags shifted) in raw space."""
    X = np.array(X_raw, dtype=np.float64, copy=True)
    lags = np.asarray(ar_lag_columns, dtype=np.int64)
    total = np.zeros(X.shape[0])
    for step in range(horizon):
        forecast = one_step(encode(X))
        total += forecast
        if step + 1 < horizon:
            X[:, lags[1:]] = X[:, lags[:-1]]
            X[:, lags[0]] = forecast
        if deadline is not None:
            deadline.check(f"recursive step {step + 1} of {horizon}")
    return total


def check_horizon(horizon: int, n_rows: int, settings: Settings):
    """The train/validation/test splits for `horizon`, or ModelSpecError naming model_spec.horizon."""
    if horizon >= n_rows:
        raise ModelSpecError(
            f"model_spec.horizon {horizon} must be smaller than the {n_rows} usable bars of the feature matrix"
        )
    training = settings.training
    try:
        splits = split_rows(n_rows, horizon, training.train_fraction, training.validation_fraction)
    except ValueError as exc:
        raise ModelSpecError(f"model_spec.horizon {horizon} does not fit the {n_rows} usable bars: {exc}") from exc
    needs = (("training", splits.train, MIN_TRAIN_ROWS), ("validation", splits.validation, MIN_VALIDATION_ROWS),
             ("test", splits.test, MIN_TEST_ROWS))
    for name, rows, minimum in needs:
        if len(rows) < minimum:
            raise ModelSpecError(
                f"model_spec.horizon {horizon} leaves {len(rows)} {name} rows of {n_rows} usable bars "
                f"after the embargo (need at least {minimum})"
            )
    return splits


def check_ar_lags(matrix: FeatureMatrix) -> None:
    """The recursive method needs ret_lag_1..ret_lag_L in the matrix."""
    if not matrix.ar_lag_columns:
        raise ModelSpecError(
            f"feature matrix {matrix.feature_set_hash[:8]}: feature_names hold no ret_lag_* columns, "
            "which the recursive prediction method rolls forward"
        )


def scaling_kind(matrix: FeatureMatrix) -> str:
    """The feature set's preprocessing.scaling (from the matrix metadata), standard when not recorded."""
    spec = matrix.metadata.get("spec") or {}
    preprocessing = spec.get("preprocessing") if isinstance(spec, dict) else None
    return str((preprocessing or {}).get("scaling", "standard"))


def block_bootstrap(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a moving-block bootstrap of n rows with blocks of length `block`."""
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    return (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]


def member_rows(member: int, n_train: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Positions within the training segment that member `member` fits (member 0: all of them)."""
    if member == 0:
        return np.arange(n_train)
    return np.sort(block_bootstrap(n_train, max(horizon, MIN_BLOCK_LENGTH), rng))


def fit_regressor(make: RegressorFactory, seed: int, Z: np.ndarray, y: np.ndarray) -> FittedRegressor:
    """Fit a fresh estimator on y / std(y) (scale 1 when y is constant)."""
    scale = float(np.std(y))
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    estimator = make(seed)
    estimator.fit(Z, y / scale)
    return FittedRegressor(estimator=estimator, y_scale=scale)


def needed_intervals(horizon: int, multi: tuple[Interval, ...]) -> tuple[Interval, ...]:
    """Distinct target intervals of all three prediction methods, in a stable order."""
    ordered = [(0, horizon), (0, 1), *multi]
    return tuple(dict.fromkeys(ordered))


def validation_metrics(val_preds: dict[str, np.ndarray], y_val: np.ndarray, combiners: dict[str, Combiners]) -> dict[str, float]:
    """MSE of every (method, ensemble) on the validation segment, next to the zero predictor's."""
    mse_zero = float(np.mean(y_val**2))
    metrics = {"validation_mse_zero": mse_zero}
    for method, preds in val_preds.items():
        for ensemble in ENSEMBLE_METHODS:
            mse = float(np.mean((combine(preds, combiners[method], ensemble) - y_val) ** 2))
            metrics[f"validation_mse_{method}_{ensemble}"] = mse
            if mse_zero > 0:
                metrics[f"validation_skill_{method}_{ensemble}"] = 1.0 - mse / mse_zero
    return metrics


def interval_targets(matrix: FeatureMatrix, horizon: int, multi: tuple[Interval, ...], train: np.ndarray) -> dict[Interval, np.ndarray]:
    """Target of every needed interval on all rows; an error if one is undefined on a training row."""
    targets = {iv: np.asarray(interval_log_return(matrix.close, iv[0], iv[1]), dtype=np.float64)
               for iv in needed_intervals(horizon, multi)}
    for (start, end), y in targets.items():
        if not np.all(np.isfinite(y[train])):
            raise ValueError(f"target log(close[t+{end}]/close[t+{start}]) is not finite on every training row")
    return targets


def fit_members(
    Z_train: np.ndarray,
    targets: dict[Interval, np.ndarray],
    horizon: int,
    make: RegressorFactory,
    n_members: int,
    seed: int,
    deadline: Deadline,
) -> list[dict[Interval, FittedRegressor]]:
    """K members, each one regressor per interval on its own rows (targets already cut to training rows)."""
    members = []
    for k in range(n_members):
        rng = np.random.default_rng([seed, k])
        picked = member_rows(k, len(Z_train), horizon, rng)
        member_seed = int(rng.integers(0, 2**31 - 1))
        member = {}
        for interval, y in targets.items():
            member[interval] = fit_regressor(make, member_seed, Z_train[picked], y[picked])
            deadline.check(f"fitting member {k + 1} of {n_members}, interval {interval}")
        members.append(member)
    return members


def train_tabular(
    matrix: FeatureMatrix,
    spec: ModelSpec,
    context: TrainingContext,
    hyperparameters: dict[str, Any],
    make_regressor: Callable[[dict[str, Any], int], Any],
) -> TabularModel:
    """Fit scaler, encoder, K members and the combiners of every prediction method (see module doc)."""
    deadline = Deadline.for_context(context, f"{spec.partition_key} on {matrix.feature_set_hash[:8]}")
    settings = context.settings
    check_ar_lags(matrix)
    splits = check_horizon(spec.horizon, matrix.n_rows, settings)
    train, val = np.asarray(splits.train), np.asarray(splits.validation)
    scaler = fit_scaler(matrix.X[train], scaling_kind(matrix))
    encoder = fit_encoder(
        spec.encoder, scaler.transform(matrix.X[train]), spec.encoder_dim,
        seed=context.seed, context=context, feature_set_hash=matrix.feature_set_hash,
    )
    deadline.check("fitting the encoder")
    Z_train = encoder.transform(scaler.transform(matrix.X[train]))
    multi = tuple((int(s), int(e)) for s, e in direct_multi_intervals(spec.horizon, settings.training.direct_multi_steps))
    targets = interval_targets(matrix, spec.horizon, multi, train)
    members = fit_members(
        Z_train, {iv: y[train] for iv, y in targets.items()}, spec.horizon,
        partial(make_regressor, hyperparameters), settings.training.members, context.seed, deadline,
    )
    model = TabularModel(
        model_spec=spec, feature_set_hash=matrix.feature_set_hash, feature_names=tuple(matrix.feature_names),
        ar_lag_columns=tuple(matrix.ar_lag_columns), scaler=scaler, encoder=encoder, intervals=multi,
        members=members, combiners={}, hyperparameters=dict(hyperparameters),
        compression=settings.storage.model_compression,
    )
    y_val = targets[(0, spec.horizon)][val]
    val_preds = {}
    for method in PREDICTION_METHODS:
        val_preds[method] = predict_raw(model, matrix.X[val], method, deadline)
        deadline.check(f"validation predictions ({method})")
    model.combiners = {method: fit_combiners(preds, y_val) for method, preds in val_preds.items()}
    model.metrics = {
        **validation_metrics(val_preds, y_val, model.combiners),
        "n_train": float(len(train)),
        "n_validation": float(len(val)),
        "n_test": float(len(splits.test)),
        "n_members": float(len(members)),
        "encoded_dim": float(Z_train.shape[1]),
    }
    return model
