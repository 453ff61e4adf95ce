"""Spec files: the JSON of each feature-set and model spec, found by its partition key.

A Dagster partition key names a spec; these files let any process (the UI, a sensor's run, the
CLI) turn a key back into the frozen spec it was created from. Written atomically, never changed:
the key carries the spec's hash, so a file that disagrees with its key is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import canonical_json
from forex_pipeline.io import atomic_write_text
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.files import safe_key

KINDS = {"feature_set": FeatureSetSpec, "model_spec": ModelSpec}


def spec_path(artifacts_dir: Path, kind: str, key: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"spec kind {kind!r} is not one of {sorted(KINDS)}")
    return Path(artifacts_dir) / "specs" / kind / f"{safe_key(key, kind)}.json"


def write_spec(artifacts_dir: Path, spec: FeatureSetSpec | ModelSpec) -> Path:
    """Store `spec` under its partition key (idempotent)."""
    kind = "feature_set" if isinstance(spec, FeatureSetSpec) else "model_spec"
    path = spec_path(artifacts_dir, kind, spec.partition_key)
    if path.exists():
        return path
    return atomic_write_text(path, canonical_json(spec.model_dump(mode="json")))


def read_spec(artifacts_dir: Path, kind: str, key: str) -> FeatureSetSpec | ModelSpec:
    """The spec stored under `key`; a clear error if it is missing or does not match its key."""
    path = spec_path(artifacts_dir, kind, key)
    if not path.exists():
        raise FileNotFoundError(f"no {kind} spec for partition key {key!r} (expected {path}); submit a grid that contains it")
    spec = KINDS[kind].model_validate(json.loads(path.read_text()))
    if spec.partition_key != key:
        raise ValueError(f"{kind} spec file {path} holds {spec.partition_key!r}, not {key!r}")
    return spec
