"""The shared names: partition-key codec round trip, statuses as plain strings, regime sentinels."""

from __future__ import annotations

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forex_pipeline.keys import (
    FINISHED_QUEUE_STATUSES,
    REGIME_SENTINELS,
    QueueStatus,
    RunStatus,
    model_config_key,
    split_model_config_key,
)
from forex_pipeline.store.tables import QUEUE_STATUSES, RUN_STATUSES

KEY = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)


@given(KEY, KEY)
def test_partition_key_round_trips_and_is_the_former_multi_partition_key(fs_key: str, ms_key: str) -> None:
    text = model_config_key(fs_key, ms_key)
    # events recorded under the former feature_set x model_spec partitions keep their keys
    assert text == str(dg.MultiPartitionKey({"feature_set": fs_key, "model_spec": ms_key}))
    assert split_model_config_key(text) == (fs_key, ms_key)


@pytest.mark.parametrize("bad", ["only-one-part", "a|b|c", "|b", "a|"])
def test_split_refuses_what_is_not_a_configuration_key(bad: str) -> None:
    with pytest.raises(ValueError, match="is not"):
        split_model_config_key(bad)


@pytest.mark.parametrize(("fs_key", "ms_key"), [("", "b"), ("a", ""), ("a|x", "b"), ("a", "b|y")])
def test_a_key_cannot_be_built_from_parts_that_would_not_split_back(fs_key: str, ms_key: str) -> None:
    with pytest.raises(ValueError, match="must be non-empty"):
        model_config_key(fs_key, ms_key)


def test_statuses_are_the_table_constraints_and_plain_strings() -> None:
    assert RUN_STATUSES == ("pending", "running", "completed", "failed")
    assert QUEUE_STATUSES == ("pending", "running", "paused", "cancelled", "completed", "failed", "interrupted")
    assert RunStatus.FAILED == "failed" and f"{QueueStatus.PAUSED}" == "paused"
    assert FINISHED_QUEUE_STATUSES == {"completed", "cancelled"}
    assert REGIME_SENTINELS == ("all", "unclassified")
