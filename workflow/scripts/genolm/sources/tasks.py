"""A real task's train/valid/test tables: run its builder, split without leakage, audit the split, write.

The split is computed on the builder's sequences with MinHash similarity clusters (or IS families), then audited
independently: every test sequence is compared with every training sequence and the number that still have a
near-duplicate in train is written to the split record and the summary (zero for a leakage-aware split).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_writer
from genolm.datasets import SPLITS, TASK_COLUMNS, summarize_tables
from genolm.errors import ConfigError
from genolm.scan_blocks import contig_lengths
from genolm.sources.catalog import SOURCE_KINDS, replicon_pairs
from genolm.sources.is_dataset import build_is_dataset
from genolm.sources.promoters import build_promoter_source
from genolm.sources.splits import (
    minhash_signatures,
    near_duplicates,
    region_bounds,
    similarity_clusters,
    split_at_random,
    split_by_cluster,
    split_by_group,
    split_by_region,
    split_for_fold,
    write_split_record,
)

log = logging.getLogger(__name__)

SPLIT_DEFAULTS = {"method": "cluster", "fractions": [0.8, 0.1, 0.1], "threshold": 0.5, "folds": 1, "fold": 1}
MINHASH = {"k": 15, "n_hashes": 128}


def _check_params(builder: Callable[..., Any], params: Mapping[str, Any], source: str, fixed: set[str]) -> None:
    """Unknown builder settings fail with the accepted names, not a TypeError deep inside the builder."""
    accepted = {
        name
        for name, parameter in inspect.signature(builder).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in fixed
    }
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"tasks.*.params for source '{source}': unknown key(s) {', '.join(unknown)} "
            f"(accepted: {', '.join(sorted(accepted))})"
        )


def build_source_table(source: str, inputs: Mapping[str, str], params: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """The labelled sequences of a builder, before splitting (columns of a task table without `split`)."""
    if source not in SOURCE_KINDS:
        raise ConfigError(f"unknown task source '{source}' (known: {', '.join(sorted(SOURCE_KINDS))})")
    if source == "isfinder_amr":
        _check_params(build_is_dataset, params, source, fixed={"summary_csv", "seed", "is_calls"})
        return build_is_dataset(
            inputs["isfinder"],
            replicon_pairs(inputs),
            summary_csv=inputs.get("summary"),
            seed=seed,
            **params,
        )
    return build_promoter_source(source, inputs, params, seed=seed)


def assign_splits(
    table: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    signatures: np.ndarray,
    regions: list[tuple[str, int, int, str]] | None = None,
) -> pd.Series:
    """train/valid/test per row: whole similarity clusters, whole IS families (`method: family`), rows at
    random within each class (`method: random`, the published protocol, for like-for-like comparisons), or genome
    stretches (`method: region`, from `regions`; None for a record crossing a boundary). With `folds` > 1, fold
    `fold` of a cross-validation over the same units."""
    fractions = [float(value) for value in settings["fractions"]]
    folds = int(settings.get("folds") or 1)
    if folds > 1:
        if settings["method"] in ("family", "region"):
            raise ConfigError(
                f"split method '{settings['method']}' has no cross-validation; use 'cluster' or 'random' with folds"
            )
        units = (
            np.arange(len(table))
            if settings["method"] == "random"
            else similarity_clusters(signatures, threshold=float(settings["threshold"]))
        )
        return split_for_fold(table, units, int(settings["fold"]), folds, fractions=fractions, seed=seed)
    if settings["method"] == "random":
        return split_at_random(table, fractions=fractions, seed=seed)
    if settings["method"] == "region":
        if regions is None:
            raise ConfigError("split method 'region' needs the genome's contig lengths")
        return split_by_region(table, regions)
    clusters = similarity_clusters(signatures, threshold=float(settings["threshold"]))
    if settings["method"] == "family":
        if "group" not in table:
            raise ConfigError("split method 'family' needs a builder that records IS families (isfinder_amr)")
        return split_by_group(table, "group", clusters=clusters, fractions=fractions, seed=seed)
    return split_by_cluster(table, clusters, fractions=fractions, seed=seed)


def genome_regions(
    source: str, inputs: Mapping[str, str], settings: Mapping[str, Any]
) -> list[tuple[str, int, int, str]] | None:
    """The genome stretches of a `method: region` split (None for other methods), from the source's genome."""
    if settings["method"] != "region":
        return None
    if "genome" not in inputs:
        raise ConfigError(
            f"split method 'region' needs a source built from a genome (such as regulondb_sigma70), not '{source}'"
        )
    return region_bounds(contig_lengths(inputs["genome"]), settings["fractions"])


def leak_audit(table: pd.DataFrame, signatures: np.ndarray, threshold: float) -> dict[str, int]:
    """How many valid/test sequences have a near-duplicate (estimated Jaccard >= threshold) in train."""
    train = signatures[(table["split"] == "train").to_numpy()]
    audit = {}
    for split in ("valid", "test"):
        rows = (table["split"] == split).to_numpy()
        audit[f"{split}_with_train_near_duplicate"] = near_duplicates(
            signatures[rows], train, threshold
        ).n_queries_with_match
    return audit


def _write_table(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_writer(path) as handle:
        table.loc[:, list(TASK_COLUMNS)].to_csv(handle, sep="\t", index=False)


def build_task_tables(
    source: str,
    inputs: Mapping[str, str],
    builder: Mapping[str, Any],
    split: Mapping[str, Any],
    seed: int,
    tables: Mapping[str, str | Path],
    splits: str | Path,
    summary: str | Path,
) -> pd.DataFrame:
    """Build, split, audit and write one task; returns the summary (counts, lengths, GC, leak audit)."""
    settings = {**SPLIT_DEFAULTS, **split}
    regions = genome_regions(source, inputs, settings)
    table = build_source_table(source, inputs, builder, seed).reset_index(drop=True)
    if table.empty or table["label"].nunique() < 2:
        raise ConfigError(f"task source '{source}' produced {len(table)} sequences without both classes")
    signatures = minhash_signatures(table["sequence"].tolist(), seed=seed, **MINHASH)
    table["split"] = assign_splits(table, settings, seed, signatures, regions).to_numpy()
    crossing = table["split"].isna().to_numpy()
    if crossing.any():
        log.info("split by region: dropped %d record(s) crossing a region boundary", int(crossing.sum()))
        table, signatures = table[~crossing].reset_index(drop=True), signatures[~crossing]
    for name in SPLITS:
        if not (table["split"] == name).any():
            raise ConfigError(f"task source '{source}': split '{name}' is empty; check split.fractions")
    audit = leak_audit(table, signatures, float(settings["threshold"]))
    log.info("leak audit at Jaccard >= %s: %s", settings["threshold"], audit)
    write_split_record(
        splits,
        method=settings["method"],
        seed=seed,
        params={
            **settings,
            **MINHASH,
            "source": source,
            "builder": dict(builder),
            "audit": audit,
            **({"regions": regions} if regions else {}),
        },
        assignments=pd.Series(table["split"].to_numpy(), index=table["id"].to_numpy()),
    )
    for name in SPLITS:
        _write_table(table[table["split"] == name], tables[name])
    result = summarize_tables({source: table})
    for key, value in audit.items():
        result[key] = value
    with atomic_writer(summary) as handle:
        result.to_csv(handle, sep="\t", index=False)
    return result
