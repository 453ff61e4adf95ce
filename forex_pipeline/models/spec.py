"""The `model_spec`: model_type, encoder, horizon and hyperparameters, with a canonical hash."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import canonical_json, config_hash, short_hash
from forex_pipeline.keys import model_config_key

MODEL_TYPES: tuple[str, ...] = (
    "ridge",
    "lasso",
    "elasticnet",
    "rf",
    "lightgbm",
    "lightning",
    "diffusion-ddpm",
    "diffusion-ddim",
    "sssd",
)
ENCODERS: tuple[str, ...] = ("none", "pca", "autoencoder", "vae", "latents")


class ModelSpec(BaseModel):
    """What to train on a feature set. `encoder_dim` is the latent size of every encoder but `none`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_type: str
    encoder: str = "none"
    encoder_dim: int = Field(8, ge=1, le=512)
    horizon: int = Field(ge=1, le=500)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_type")
    @classmethod
    def _model_type(cls, value: str) -> str:
        if value not in MODEL_TYPES:
            raise ValueError(f"model_type {value!r} is unknown; known: {', '.join(MODEL_TYPES)}")
        return value

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, value: str) -> str:
        if value not in ENCODERS:
            raise ValueError(f"encoder {value!r} is unknown; known: {', '.join(ENCODERS)}")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _sorted(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(sorted(value.items()))

    def canonical(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if self.encoder == "none":
            data.pop("encoder_dim")
        return data

    @property
    def hash(self) -> str:
        return config_hash(self.canonical())

    @property
    def partition_key(self) -> str:
        """Readable plus a short hash, e.g. rf-pca-h5-d4e5f6a7."""
        return f"{self.model_type}-{self.encoder}-h{self.horizon}-{short_hash(self.canonical())}"

    @property
    def label(self) -> str:
        """What a person reads, without a hash: `rf h5 max_depth=4 n_estimators=50` (`rf pca/8 h5` with an encoder)."""
        parts = [self.model_type]
        if self.encoder != "none":
            parts.append(f"{self.encoder}/{self.encoder_dim}")
        parts.append(f"h{self.horizon}")
        parts.extend(f"{name}={value}" for name, value in self.hyperparameters.items())
        return " ".join(parts)


def model_config_hash(feature_set_hash: str, model_spec_hash: str) -> str:
    """The hash of one model configuration (a feature set paired with a model spec)."""
    return config_hash({"feature_set": feature_set_hash, "model_spec": model_spec_hash})


def model_config_prefix(feature_set_hash: str) -> str:
    """The start of the canonical JSON model_config_hash digests, up to the model spec's hash: a grid
    hashes its pairs from a prefix per feature set and a suffix per model spec, each built once."""
    return '{"feature_set":' + canonical_json(feature_set_hash) + ',"model_spec":'


def model_config_suffix(model_spec_hash: str) -> str:
    """The rest of the canonical JSON after model_config_prefix (see there)."""
    return canonical_json(model_spec_hash) + "}"


@dataclass(frozen=True)
class ModelConfiguration:
    """One feature set paired with one model spec, with its keys and hashes computed once.

    It travels whole from the grid to the queue, the pipeline and the store, so no caller derives
    a key or hash again.
    """

    feature_set: FeatureSetSpec
    model_spec: ModelSpec
    feature_set_key: str
    model_spec_key: str
    feature_set_hash: str
    model_spec_hash: str
    model_config_hash: str

    @classmethod
    def of(cls, feature_set: FeatureSetSpec, model_spec: ModelSpec) -> ModelConfiguration:
        """The configuration of a (feature set, model spec) pair."""
        fs_hash, ms_hash = feature_set.hash, model_spec.hash
        return cls(
            feature_set, model_spec, feature_set.partition_key, model_spec.partition_key, fs_hash, ms_hash,
            model_config_hash(fs_hash, ms_hash),
        )

    @cached_property
    def partition_key(self) -> str:
        """The configuration's Dagster partition key (one dynamic partition each), e.g.
        EURUSD-1h-d365-a1b2c3d4|rf-pca-h5-d4e5f6a7: built once from the keys it carries."""
        return model_config_key(self.feature_set_key, self.model_spec_key)

    @property
    def label(self) -> str:
        """The readable name of the configuration, e.g. `EURUSD 1h 365d | rf h5 max_depth=4 n_estimators=50`."""
        return f"{self.feature_set.label} | {self.model_spec.label}"
