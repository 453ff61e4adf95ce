"""YAML from users, read with limits: no duplicate keys, bounded size, depth and aliases.

PyYAML's safe loader lets the last of two equal keys win silently, recurses without bound on
deeply nested documents and shares aliased nodes, so an alias "bomb" expands only later, in
whoever walks the data. Every user YAML (grid files, settings files) goes through `load_yaml`,
which refuses all of these before anything else sees the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

from forex_pipeline.errors import InputError

MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_ALIASES = 64


class YamlInputError(InputError):
    """A YAML document is unreadable, too large, too deep, has too many aliases or duplicate keys."""


def _loader(source: str, max_depth: int, max_aliases: int) -> type[yaml.SafeLoader]:
    """A SafeLoader subclass that enforces the limits while composing and refuses duplicate keys."""

    class LimitedLoader(yaml.SafeLoader):
        depth = 0
        aliases = 0

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            if self.check_event(yaml.AliasEvent):
                LimitedLoader.aliases += 1
                if LimitedLoader.aliases > max_aliases:
                    mark = self.peek_event().start_mark
                    raise YamlInputError(f"{source}: more than {max_aliases} YAML aliases (line {mark.line + 1}); write the values out")
            LimitedLoader.depth += 1
            try:
                if LimitedLoader.depth > max_depth:
                    mark = self.peek_event().start_mark
                    raise YamlInputError(f"{source}: nested deeper than {max_depth} levels (line {mark.line + 1})")
                return super().compose_node(parent, index)
            finally:
                LimitedLoader.depth -= 1

        def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:
                    raise YamlInputError(f"{source}: line {line}: a mapping key must be a plain value") from None
                if first is not None:
                    raise YamlInputError(f"{source}: line {line}: duplicate key {key!r} (first on line {first}); each key may appear once")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return LimitedLoader


def parse_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES) -> Any:
    """The data of one YAML document; YamlInputError (naming `source`) for anything refused."""
    try:
        return yaml.load(text, Loader=_loader(source, max_depth, max_aliases))  # noqa: S506 - a SafeLoader subclass
    except YamlInputError:
        raise
    except yaml.YAMLError as exc:
        raise YamlInputError(f"{source} is not valid YAML: {' '.join(str(exc).split())}") from None
    except (ValueError, RecursionError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        raise YamlInputError(f"{source}: a value cannot be read: {' '.join(str(exc).split())[:200]}") from None


def load_yaml(path: Path | str, *, what: str = "file", max_bytes: int = MAX_BYTES) -> Any:
    """Read a user's YAML file with the limits above; the error names the file."""
    path = Path(path)
    if path.is_dir():
        raise YamlInputError(f"{what} {path} is a directory, not a YAML file")
    if not path.exists():
        raise YamlInputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise YamlInputError(f"{what} {path} is not a regular file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise YamlInputError(f"{what} {path} is {size:,} bytes; the limit is {max_bytes:,}")
        raw = path.read_bytes()[: max_bytes + 1]
    except OSError as exc:
        raise YamlInputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise YamlInputError(f"{what} {path} is larger than {max_bytes:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlInputError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, str(path))
