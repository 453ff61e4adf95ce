"""Typed Dagster metadata from the reporting layer's plain tables and charts.

Tables become `TableMetadataValue`s with a `TableSchema` (the UI renders them as real tables, one
cell per value); a chart becomes its own Markdown image entry plus its path.
"""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg

from forex_pipeline.reporting.tables import Table


def table_metadata(table: Table) -> dg.TableMetadataValue:
    """`table` as typed table metadata: the schema from its columns, one `TableRecord` per record."""
    schema = dg.TableSchema(columns=[dg.TableColumn(c.name, type=c.type, description=c.description) for c in table.columns])
    return dg.MetadataValue.table(records=[dg.TableRecord(dict(record)) for record in table.records], schema=schema)


def chart_metadata(name: str, path: Path) -> dict[str, dg.MetadataValue]:
    """One chart: the PNG inline (a Markdown image entry of its own) and the file's path."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return {
        name: dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})"),
        f"{name}_path": dg.MetadataValue.path(str(path)),
    }


def explorer_link(explorer_url: str, tab: str, **query: str) -> str:
    """The explorer URL opening `tab` (history, regimes, definitions, queues), e.g. with `config=<model_config_hash>`."""
    from urllib.parse import urlencode

    return f"{explorer_url.rstrip('/')}/?{urlencode({'tab': tab, **query})}"
