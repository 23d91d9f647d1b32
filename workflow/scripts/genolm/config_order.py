"""One key order for the config, whatever order the user wrote it in.

Snakemake's params trigger compares each parameter's `repr`, and a dict's repr follows its key order: a settings
block written in another order (or with a default spelt out, which validation would otherwise append last) would
rerun every job that takes it. Inside a settings block key order means nothing, so it is sorted; the order of the
named collections (tasks, models, genomes, read sets, VCFs) is kept, because it is the report's order and decides
which model owns a shared language model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Paths (key sequences) of the mappings whose own key order the user chose on purpose.
ORDERED_COLLECTIONS: frozenset[tuple[str, ...]] = frozenset(
    {("tasks",), ("models",), ("genomes",), ("reads",), ("lm", "variants", "vcfs")}
)


def canonical_config(
    config: Mapping[str, Any], ordered: frozenset[tuple[str, ...]] = ORDERED_COLLECTIONS
) -> dict[str, Any]:
    """A copy of `config` with every mapping's keys sorted, except the collections at the paths in `ordered`, which
    keep their order (their members are still canonical). Lists keep their order; their items are canonical."""
    return _canonical(config, (), ordered)


def _canonical(value: Any, path: tuple[str, ...], ordered: frozenset[tuple[str, ...]]) -> Any:
    if isinstance(value, Mapping):
        keys = list(value) if path in ordered else sorted(value, key=str)
        return {key: _canonical(value[key], (*path, str(key)), ordered) for key in keys}
    if isinstance(value, list):
        return [_canonical(item, path, ordered) for item in value]
    return value
