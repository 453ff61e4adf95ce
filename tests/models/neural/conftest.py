"""Fixtures of the neural tests: three months of real EUR/USD 1h features and tiny training budgets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.splits import split_rows
from forex_pipeline.models.context import TrainingContext
from forex_pipeline.settings import Settings, parse_settings
from tests.models.conftest import simple_matrix

TINY_NEURAL = {
    "max_epochs": 2,
    "max_seconds": 30,
    "batch_size": 128,
    "diffusion_steps": 20,
    "ddim_steps": 4,
    "samples": 3,
}


@pytest.fixture(scope="session")
def neural_matrix(eurusd_1h: pd.DataFrame) -> FeatureMatrix:
    """EUR/USD 1h, January to March 2019 (about 1,500 rows), simple causal features."""
    return simple_matrix(eurusd_1h.loc["2019-01-01":"2019-03-31"], feature_set_hash="eurusd-1h-q1")


def tiny_settings(**neural: object) -> Settings:
    return parse_settings({"training": {"members": 2, "neural": {**TINY_NEURAL, **neural}}})


def tiny_context(tmp_path: Path, seed: int = 7, **neural: object) -> TrainingContext:
    return TrainingContext(settings=tiny_settings(**neural), artifacts_dir=tmp_path / "artifacts", seed=seed)


def segment_rows(matrix: FeatureMatrix, horizon: int) -> np.ndarray:
    """Test-segment rows whose forward target exists (about 290 rows of the fixture matrix)."""
    splits = split_rows(matrix.n_rows, horizon, 0.6, 0.2)
    return splits.test[splits.test < matrix.n_rows - horizon]


def truncated(matrix: FeatureMatrix, end: int) -> FeatureMatrix:
    """The matrix as it would have been built from the bars up to row `end` only."""
    return replace(matrix, timestamps=matrix.timestamps[:end], X=matrix.X[:end].copy(), close=matrix.close[:end].copy())
