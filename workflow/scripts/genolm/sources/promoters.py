"""Promoter task sources by name, so a config can say `cnnprom_ecoli` and name its input files.

Input keys (paths) and optional params of each source:

- cnnprom_ecoli, cnnprom_bsubtilis, ipromoter2l_ecoli: {positives, negatives}, no params. CNNProm
  Ecoli_prom.fa / Ecoli_non_prom.fa and Bacillus_prom.fa / Bacillus_non_prom.fa; iPromoter-2L layer 1
  positive2860.txt / negative2860.txt. No seed: the records are the published ones.
- regulondb_sigma70: {genome, promoters, gff}; params upstream, downstream, negatives_per_positive,
  coding_fraction, exclusion, tss_shifts. Sigma70 TSS windows vs. coding and intergenic background.
- ulmfit_cds_ecoli: {genome, gff}; params upstream, downstream, min_cds_length. Genomic-ULMFiT's CDS-start
  vs. inside-CDS windows.
- genomic_benchmarks_human_nontata: {table}, no params. Genomic Benchmarks' human_nontata_promoters test split
  (251 bp, CNNProm's human non-TATA set re-mapped to GRCh38), the only split with public sequences: genolm
  re-splits it, which the report's protocol column says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genolm.errors import ConfigError
from genolm.sources.cds_windows import cds_start_windows
from genolm.sources.labelled_csv import read_labelled_csv
from genolm.sources.labelled_fasta import read_labelled_fasta
from genolm.sources.regulondb import read_regulondb, regulondb_tss_windows

__all__ = [
    "PROMOTER_SOURCES",
    "PromoterSource",
    "build_promoter_source",
    "cds_start_windows",
    "read_labelled_fasta",
    "read_regulondb",
    "regulondb_tss_windows",
]


@dataclass(frozen=True)
class PromoterSource:
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    build: Callable[[Mapping[str, Path], Mapping[str, Any], int, str], pd.DataFrame]


def _fasta_pair(inputs: Mapping[str, Path], params: Mapping[str, Any], seed: int, name: str) -> pd.DataFrame:
    return read_labelled_fasta(inputs["positives"], inputs["negatives"], source=name)  # fixed files: no seed


def _csv(inputs: Mapping[str, Path], params: Mapping[str, Any], seed: int, name: str) -> pd.DataFrame:
    return read_labelled_csv(inputs["table"], source=name)


def _regulondb(inputs: Mapping[str, Path], params: Mapping[str, Any], seed: int, name: str) -> pd.DataFrame:
    return regulondb_tss_windows(
        inputs["genome"], inputs["promoters"], inputs["gff"], sigma="Sigma70", seed=seed, source=name, **params
    )


def _cds(inputs: Mapping[str, Path], params: Mapping[str, Any], seed: int, name: str) -> pd.DataFrame:
    return cds_start_windows(inputs["genome"], inputs["gff"], seed=seed, source=name, **params)


_FASTA_PAIR = PromoterSource(("positives", "negatives"), (), _fasta_pair)
PROMOTER_SOURCES: dict[str, PromoterSource] = {
    "cnnprom_ecoli": _FASTA_PAIR,
    "cnnprom_bsubtilis": _FASTA_PAIR,
    "ipromoter2l_ecoli": _FASTA_PAIR,
    "regulondb_sigma70": PromoterSource(
        ("genome", "promoters", "gff"),
        ("upstream", "downstream", "negatives_per_positive", "coding_fraction", "exclusion", "tss_shifts"),
        _regulondb,
    ),
    "ulmfit_cds_ecoli": PromoterSource(("genome", "gff"), ("upstream", "downstream", "min_cds_length"), _cds),
    "genomic_benchmarks_human_nontata": PromoterSource(("table",), (), _csv),
}


def build_promoter_source(
    name: str, inputs: Mapping[str, str | Path], params: Mapping[str, Any] | None = None, seed: int = 0
) -> pd.DataFrame:
    """The task table (without `split`) of a named source; ids are prefixed with `name`."""
    source = PROMOTER_SOURCES.get(name)
    if source is None:
        raise ConfigError(f"unknown promoter source '{name}'; known: {', '.join(sorted(PROMOTER_SOURCES))}")
    missing = [key for key in source.inputs if key not in inputs]
    if missing:
        raise ConfigError(f"promoter source '{name}' needs input(s) {', '.join(missing)} (keys: {source.inputs})")
    params = dict(params or {})
    unknown = sorted(set(params) - set(source.params))
    if unknown:
        allowed = ", ".join(source.params) or "none"
        raise ConfigError(f"promoter source '{name}': unknown param(s) {', '.join(unknown)}; allowed: {allowed}")
    return source.build({key: Path(inputs[key]) for key in source.inputs}, params, seed, name)
