"""Typed tables: no cell value can shift a column, whatever text it holds."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from forex_pipeline.dagster_defs.metadata import table_metadata
from forex_pipeline.reporting.tables import BESTS_COLUMNS, Column, Table, bests_table

HOSTILE = ["a|b", "line\nbreak", "| x | y |", "**bold** `code` [l](u)", "|", "\r\n|---|", "", "<td>cell</td>"]


def _bests_frame(keys: list[str]) -> pd.DataFrame:
    rows = []
    for index, key in enumerate(keys):
        rows.append(
            {
                "regime": f"r{index}|x", "rank": 1, "training_run_id": index, "model_config_hash": f"{index:064d}",
                "partition_key": key, "prediction_method": "direct", "ensemble_method": "mean|median",
                "confidence_threshold": 0.5, "lookback_window": 20, "score": 1.5 if index else float("nan"),
                "improvement": None, "trade_count": 40, "n_trials": 135, "deflated_sharpe": float("inf"),
                "updated_at": pd.Timestamp("2024-01-01T00:00Z"), "kept": True,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_no_cell_value_shifts_a_column(tmp_path, hostile):
    key = f"EURUSD-1h-d365-{hostile}|rf-none-h5-{hostile}"
    table = bests_table(_bests_frame([key, hostile]), ["r0|x"], tmp_path)
    value = table_metadata(table)
    names = [c.name for c in value.schema.columns]
    assert names == [c.name for c in BESTS_COLUMNS]
    assert len(value.records) == 2
    for record, expected_key in zip(value.records, [key, hostile]):
        assert list(record.data) == names  # every column present, none added, in schema order
        assert record.data["partition_key"] == expected_key  # the value whole, in its own column
        assert record.data["model"] == expected_key  # no spec files: the key itself, unaltered
        assert record.data["trades"] == 40 and record.data["trials"] == 135
        assert record.data["inference"] == "direct/mean|median c>=0.5 lb=20"
        assert record.data["deflated_sharpe"] is None  # inf is an empty cell, not a string
    assert value.records[0].data["sharpe"] is None and value.records[1].data["sharpe"] == 1.5
    # and it survives Dagster's own serialisation as the same cells
    restored = dg.deserialize_value(dg.serialize_value(value), dg.TableMetadataValue)
    assert [r.data for r in restored.records] == [r.data for r in value.records]


def test_a_record_with_a_missing_or_extra_column_is_refused():
    columns = (Column("a", "string", ""), Column("b", "int", ""))
    with pytest.raises(ValueError, match="expected"):
        Table(columns, ({"a": "x"},))
    with pytest.raises(ValueError, match="expected"):
        Table(columns, ({"a": "x", "b": 1, "c": 2},))


def test_a_value_of_the_wrong_type_is_refused():
    columns = (Column("a", "string", ""), Column("b", "int", ""))
    with pytest.raises(TypeError, match="'b'"):
        Table(columns, ({"a": "x", "b": "1|2"},))
    with pytest.raises(TypeError, match="'b'"):
        Table(columns, ({"a": "x", "b": True},))


def test_readable_model_names_with_the_hash_apart(tmp_path):
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.spec import ModelConfiguration, ModelSpec
    from forex_pipeline.store.spec_files import write_spec

    fs = FeatureSetSpec(symbol="EURUSD", base_timeframe="1h", days_history=365, as_of="2020-01-01T00:00Z")
    ms = ModelSpec(model_type="rf", horizon=5, hyperparameters={"n_estimators": 50, "max_depth": 4})
    write_spec(tmp_path, fs)
    write_spec(tmp_path, ms)
    configuration = ModelConfiguration.of(fs, ms)
    frame = _bests_frame([configuration.partition_key]).assign(model_config_hash=configuration.model_config_hash)
    record = bests_table(frame, [], tmp_path).records[0]
    assert record["model"] == "EURUSD 1h 365d | rf h5 max_depth=4 n_estimators=50" == configuration.label
    assert record["config_hash"] == configuration.model_config_hash[:12]
