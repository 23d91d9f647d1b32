"""Leakage-aware train/valid/test splits: MinHash similarity clusters, whole clusters (or groups) per split.

A random split of IS elements or promoter windows leaks: near-identical isoforms and overlapping windows land on
both sides. Sequences are therefore sketched with MinHash over canonical k-mers (a sequence and its reverse
complement get the same signature), linked when their estimated Jaccard similarity reaches a threshold, and each
connected cluster goes to one split. Everything is numpy and seeded, so a split is reproducible from its record.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import write_text_atomic
from genolm.datasets import SPLITS
from genolm.errors import ConfigError
from genolm.seqio import reverse_complement

__all__ = [
    "BASE_CODES",
    "NearDuplicates",
    "dataset_overlap",
    "heldout_regions",
    "kmer_codes",
    "minhash_signatures",
    "near_duplicates",
    "read_split_record",
    "region_bounds",
    "similarity_clusters",
    "split_at_random",
    "split_by_cluster",
    "split_by_group",
    "split_by_region",
    "split_for_fold",
    "write_split_record",
]

log = logging.getLogger(__name__)

EMPTY = np.uint32(np.iinfo(np.uint32).max)  # signature value of a sequence without a single valid k-mer
BASE_CODES = np.full(256, 4, dtype=np.uint8)  # byte -> 2-bit base code; 4 marks anything that is not ACGT
for _code, _base in enumerate(b"ACGT"):
    BASE_CODES[_base] = BASE_CODES[_base + 32] = _code
_BLOCK_BASES = 1 << 22  # sequences are hashed in blocks of about this many bases to bound memory


# --- MinHash signatures --------------------------------------------------------------------------------------


def kmer_codes(codes: np.ndarray, k: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Forward and reverse-complement k-mer integers at every start of a 2-bit code array.

    Built by doubling (1-, 2-, 4-, 8-mers, then joined by k's binary digits), so k=15 takes 7 array passes, not 30.
    """
    n = codes.size - k + 1
    base = codes.astype(dtype)
    powers: dict[int, tuple[np.ndarray, np.ndarray]] = {1: (base, dtype(3) - base)}
    length = 1
    while length * 2 <= k:
        fw, rc = powers[length]
        m = fw.size - length
        shift = dtype(2 * length)
        powers[length * 2] = ((fw[:m] << shift) | fw[length:], rc[:m] | (rc[length:] << shift))
        length *= 2
    forward = reverse = None
    done = 0  # bases covered so far by (forward, reverse)
    for size in sorted(powers, reverse=True):
        if done + size > k:
            continue
        fw, rc = powers[size][0][done : done + n], powers[size][1][done : done + n]
        if forward is None:
            forward, reverse = fw.copy(), rc.copy()
        else:
            forward = (forward << dtype(2 * size)) | fw
            reverse |= rc << dtype(2 * done)
        done += size
    return forward, reverse


def _mix32(values: np.ndarray) -> np.ndarray:
    """A well-mixed 32-bit hash of each k-mer integer (MurmurHash3-style finaliser), so that the cheap per-hash
    xor-multiply permutations below start from uniformly spread bits."""
    x = values.astype(np.uint64)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return (x >> np.uint64(16)).astype(np.uint32)


def _canonical_hashes(sequences: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of the canonical k-mers of each sequence (k-mers with a non-ACGT base are skipped), and
    per-sequence counts."""
    joined = "\n".join(sequences).encode("ascii", errors="replace")  # the separator breaks k-mers between records
    codes = BASE_CODES[np.frombuffer(joined, dtype=np.uint8)]
    if codes.size < k:
        return np.zeros(0, np.uint32), np.zeros(len(sequences), np.int64)
    bad = codes == 4
    dtype = np.uint32 if k <= 16 else np.uint64
    forward, reverse = kmer_codes(np.where(bad, 0, codes), k, dtype)
    bad_before = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    valid = bad_before[k:] - bad_before[: forward.size] == 0
    hashes = _mix32(np.minimum(forward, reverse)[valid])
    starts = np.cumsum([0, *(len(seq) + 1 for seq in sequences[:-1])])  # record starts in `joined`
    valid_before = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
    ends = starts + np.fromiter((len(seq) for seq in sequences), np.int64, len(sequences)) - k + 1
    counts = valid_before[np.clip(ends, starts, forward.size)] - valid_before[np.minimum(starts, forward.size)]
    return hashes, np.maximum(counts, 0)


def minhash_signatures(sequences: Sequence[str], k: int = 15, n_hashes: int = 128, seed: int = 0) -> np.ndarray:
    """MinHash signatures (uint32 [N, n_hashes]) of the canonical k-mer sets of `sequences`.

    Hash i of a k-mer is ``(h ^ b_i) * a_i mod 2**32`` with seeded random b_i and odd a_i, applied to a mixed
    32-bit hash h of the canonical k-mer; the signature keeps each minimum. Two signatures agree at a position
    with probability equal to the Jaccard similarity of the k-mer sets. A sequence without any ACGT k-mer gets
    an all-EMPTY signature, which :func:`similarity_clusters` never links to anything.
    """
    if not 1 <= k <= 31:
        raise ConfigError(f"minhash k must be 1..31, got {k}")
    if n_hashes < 1:
        raise ConfigError(f"n_hashes must be positive, got {n_hashes}")
    rng = np.random.default_rng(seed)
    xors = rng.integers(0, 2**32, n_hashes, dtype=np.uint64).astype(np.uint32)
    multipliers = (rng.integers(0, 2**32, n_hashes, dtype=np.uint64) | 1).astype(np.uint32)
    sequences = list(sequences)
    signatures = np.full((len(sequences), n_hashes), EMPTY, dtype=np.uint32)
    first, bases = 0, 0
    for index, sequence in enumerate(sequences):
        bases += len(sequence)
        if bases >= _BLOCK_BASES or index == len(sequences) - 1:
            block = slice(first, index + 1)
            _sign_block(sequences[block], signatures[block], k, xors, multipliers)
            first, bases = index + 1, 0
    return signatures


def _sign_block(sequences: list[str], out: np.ndarray, k: int, xors: np.ndarray, multipliers: np.ndarray) -> None:
    """Fill `out` (a view of the signature rows of `sequences`) with their minima."""
    hashes, counts = _canonical_hashes(sequences, k)
    filled = counts > 0
    if not filled.any():
        return
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
    for i in range(len(xors)):
        permuted = hashes ^ xors[i]
        permuted *= multipliers[i]
        out[filled, i] = np.minimum.reduceat(permuted, offsets)


# --- similarity clusters -------------------------------------------------------------------------------------


def _rows_per_band(n_hashes: int, threshold: float, sensitivity: float = 0.999) -> int:
    """The most rows per LSH band that still make a pair at `threshold` a candidate with `sensitivity`."""
    best = 1
    for rows in range(1, n_hashes + 1):
        bands = n_hashes // rows
        if 1 - (1 - threshold**rows) ** bands >= sensitivity:
            best = rows
    return best


def _band_keys(signatures: np.ndarray, rows: int) -> np.ndarray:
    """One uint64 key per (sequence, band): the band's `rows` values folded with a multiply-xor hash."""
    n, width = signatures.shape
    bands = width // rows
    values = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    keys = np.zeros((n, bands), dtype=np.uint64)
    for j in range(rows):
        keys = (keys ^ values[:, :, j]) * np.uint64(0x9E3779B97F4A7C15)
        keys ^= keys >> np.uint64(29)
    return keys


def _candidate_pairs(signatures: np.ndarray, rows: int, usable: np.ndarray) -> np.ndarray:
    """Unique index pairs (i < j) that share at least one LSH band; int64 [P, 2]."""
    keys = _band_keys(signatures, rows)
    indices = np.flatnonzero(usable)
    found: list[np.ndarray] = []
    for band in range(keys.shape[1]):
        order = indices[np.argsort(keys[indices, band], kind="stable")]
        sorted_keys = keys[order, band]
        # every pair inside a run of equal keys, found by comparing each position with the one `gap` further on
        gap = 1
        while gap < order.size:
            same = sorted_keys[gap:] == sorted_keys[:-gap]
            if not same.any():
                break
            hits = np.flatnonzero(same)
            found.append(np.stack([order[hits], order[hits + gap]], axis=1))
            gap += 1
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def _agreement(a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Fraction of equal positions of paired signature rows: the MinHash estimate of Jaccard similarity."""
    out = np.empty(a.shape[0], dtype=np.float64)
    for start in range(0, a.shape[0], chunk):
        out[start : start + chunk] = (a[start : start + chunk] == b[start : start + chunk]).mean(axis=1)
    return out


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph, numbered by their smallest member (so ids are stable)."""
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for i, j in pairs.tolist():
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)
    _, ids = np.unique(roots, return_inverse=True)  # roots are smallest members, so ids follow first appearance
    return ids.astype(np.int64)


def similarity_clusters(signatures: np.ndarray, threshold: float = 0.5, bands: int | None = None) -> np.ndarray:
    """Cluster id per sequence: single-linkage over pairs whose estimated Jaccard similarity is >= `threshold`.

    Candidate pairs come from LSH banding (sequences sharing all values of at least one band); each candidate is
    confirmed with the full-signature agreement, then linked with union-find. `bands=None` picks the fewest rows
    per band that still finds a pair at the threshold with probability >= 0.999. Deterministic for given
    signatures; ids are numbered in order of each cluster's first member.
    """
    signatures = np.asarray(signatures)
    if signatures.ndim != 2:
        raise ConfigError(f"signatures must be 2-D, got shape {signatures.shape}")
    if not 0 < threshold <= 1:
        raise ConfigError(f"similarity threshold must be in (0, 1], got {threshold}")
    n, width = signatures.shape
    if bands is None:
        rows = _rows_per_band(width, threshold)
    elif 1 <= bands <= width:
        rows = width // bands
    else:
        raise ConfigError(f"bands must be 1..{width}, got {bands}")
    usable = ~(signatures == EMPTY).all(axis=1)
    pairs = _candidate_pairs(signatures, rows, usable)
    if len(pairs):
        pairs = pairs[_agreement(signatures[pairs[:, 0]], signatures[pairs[:, 1]]) >= threshold]
    clusters = _components(n, pairs)
    log.info(
        "%d sequences in %d similarity clusters (Jaccard >= %.2f, %d rows per band, %d linked pairs)",
        n,
        clusters.max() + 1 if n else 0,
        threshold,
        rows,
        len(pairs),
    )
    return clusters


# --- near duplicates and cross-dataset overlap ---------------------------------------------------------------


@dataclass(frozen=True)
class NearDuplicates:
    """Per query sequence: how many reference sequences reach the threshold, and the most similar one."""

    counts: np.ndarray  # int64 [Q]
    best: np.ndarray  # int64 [Q], index into the reference set, -1 when nothing reaches the threshold
    similarity: np.ndarray  # float64 [Q], estimated Jaccard of `best` (0 when none)

    @property
    def n_queries_with_match(self) -> int:
        return int((self.counts > 0).sum())


def near_duplicates(query: np.ndarray, reference: np.ndarray, threshold: float = 0.5) -> NearDuplicates:
    """Reference sequences whose signature agreement with each query reaches `threshold`.

    Exact for the signatures (no LSH miss): every pair sharing any one MinHash value is a candidate, and a pair
    with agreement above zero always shares one. Use it to audit a split independently of the clustering.
    """
    query, reference = np.asarray(query), np.asarray(reference)
    if query.shape[1:] != reference.shape[1:]:
        raise ConfigError(f"signature widths differ: {query.shape[1:]} vs {reference.shape[1:]}")
    n_query = query.shape[0]
    joined = np.concatenate([query, reference])
    usable = ~(joined == EMPTY).all(axis=1)
    pairs = _candidate_pairs(joined, 1, usable)
    pairs = pairs[(pairs[:, 0] < n_query) & (pairs[:, 1] >= n_query)]
    similarity = _agreement(joined[pairs[:, 0]], joined[pairs[:, 1]]) if len(pairs) else np.zeros(0)
    keep = similarity >= threshold
    pairs, similarity = pairs[keep], similarity[keep]
    counts = np.bincount(pairs[:, 0], minlength=n_query).astype(np.int64)
    best = np.full(n_query, -1, dtype=np.int64)
    best_similarity = np.zeros(n_query)
    order = np.lexsort((-similarity, pairs[:, 0]))  # per query, most similar first
    first = order[np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]] if len(order) else order
    best[pairs[first, 0]] = pairs[first, 1] - n_query
    best_similarity[pairs[first, 0]] = similarity[first]
    return NearDuplicates(counts, best, best_similarity)


def dataset_overlap(
    sequences_a: Sequence[str],
    sequences_b: Sequence[str],
    threshold: float = 0.5,
    *,
    k: int = 15,
    n_hashes: int = 128,
    seed: int = 0,
) -> dict[str, int]:
    """How many sequences of set A also occur in set B: `exact` (identical on either strand, case ignored) and
    `near` (estimated Jaccard >= `threshold`, exact copies included)."""
    a = [seq.upper() for seq in sequences_a]
    b_keys = {seq.upper() for seq in sequences_b}
    b_keys |= {reverse_complement(seq) for seq in b_keys}
    exact = sum(seq in b_keys for seq in a)
    signatures_a = minhash_signatures(a, k=k, n_hashes=n_hashes, seed=seed)
    signatures_b = minhash_signatures(list(sequences_b), k=k, n_hashes=n_hashes, seed=seed)
    near = near_duplicates(signatures_a, signatures_b, threshold).n_queries_with_match
    return {"n_a": len(a), "n_b": len(sequences_b), "exact": int(exact), "near": int(near)}


# --- splits --------------------------------------------------------------------------------------------------


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    values = np.asarray(fractions, dtype=np.float64)
    if values.shape != (len(SPLITS),) or (values < 0).any() or not np.isclose(values.sum(), 1.0):
        raise ConfigError(f"split fractions must be {len(SPLITS)} non-negative numbers summing to 1, got {fractions}")
    return values


def _assign_units(
    units: np.ndarray, labels: np.ndarray, fractions: np.ndarray, seed: int, allowed: Mapping[int, Sequence[int]]
) -> np.ndarray:
    """Split index per row, moving whole units: largest unit first (ties in seeded random order), each to the
    allowed split that is least full for the unit's classes after adding it."""
    unit_ids, unit_of_row = np.unique(units, return_inverse=True)
    classes, class_of_row = np.unique(labels, return_inverse=True)
    per_unit = np.zeros((len(unit_ids), len(classes)), dtype=np.int64)
    np.add.at(per_unit, (unit_of_row, class_of_row), 1)
    targets = fractions[:, None] * per_unit.sum(axis=0)[None, :]  # [split, class]
    filled = np.zeros_like(targets)
    tiebreak = np.random.default_rng(seed).permutation(len(unit_ids))
    order = np.lexsort((tiebreak, -per_unit.sum(axis=1)))
    unit_split = np.empty(len(unit_ids), dtype=np.int64)
    every_split = range(len(fractions))
    for unit in order:
        present = per_unit[unit] > 0
        best, best_fill = -1, np.inf
        for split in allowed.get(int(unit_ids[unit]), every_split):
            with np.errstate(divide="ignore", invalid="ignore"):
                fill = (filled[split, present] + per_unit[unit, present]) / targets[split, present]
            worst = float(np.nan_to_num(fill, nan=np.inf, posinf=np.inf).max())
            if worst < best_fill:
                best, best_fill = split, worst
        if best < 0:  # every allowed split has a zero target for this class: fall back to the first allowed one
            best = next(iter(allowed.get(int(unit_ids[unit]), every_split)))
        unit_split[unit] = best
        filled[best] += per_unit[unit]
    return unit_split[unit_of_row]


def _as_split_names(table: pd.DataFrame, split_index: np.ndarray) -> pd.Series:
    names = pd.Series(np.asarray(SPLITS, dtype=object)[split_index], index=table.index, name="split")
    counts = names.groupby([names, table["label"]]).size().unstack(fill_value=0)
    log.info("split sizes by label:\n%s", counts.reindex([s for s in SPLITS if s in counts.index]).to_string())
    return names


def split_by_cluster(
    table: pd.DataFrame,
    clusters: np.ndarray | Sequence[int],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: str = "label",
) -> pd.Series:
    """Split name per row of `table`; every similarity cluster goes to a single split, and the greedy assignment
    keeps each class of `stratify` close to the target fractions."""
    clusters = np.asarray(clusters)
    if clusters.shape != (len(table),):
        raise ConfigError(f"need one cluster id per row ({len(table)}), got shape {clusters.shape}")
    split_index = _assign_units(clusters, table[stratify].to_numpy(), _check_fractions(fractions), seed, {})
    return _as_split_names(table, split_index)


def split_at_random(
    table: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, stratify: str = "label"
) -> pd.Series:
    """Split name per row, each class of `stratify` cut at random to the target fractions: the protocol of the
    published CNNProm / Genomic-ULMFiT figures. Near-duplicates may straddle splits (the leak audit counts them)."""
    return split_by_cluster(table, np.arange(len(table)), fractions=fractions, seed=seed, stratify=stratify)


def split_for_fold(
    table: pd.DataFrame,
    units: np.ndarray | Sequence[int],
    fold: int,
    folds: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: str = "label",
) -> pd.Series:
    """Split name per row for fold `fold` (1-based) of a `folds`-fold cross-validation.

    Units (rows, or similarity clusters for a leakage-aware CV) are dealt into `folds` class-stratified folds with
    the same seed for every fold, so the folds partition the data and each row is tested exactly once. Fold `fold`
    is the test split; the other rows are cut into train and valid in the ratio of `fractions[0]:fractions[1]`
    (the test share of `fractions` is replaced by 1/folds). The validation rows choose thresholds and early stopping
    only, as in the single split.
    """
    if folds < 2 or not 1 <= fold <= folds:
        raise ConfigError(f"cross-validation needs folds >= 2 and 1 <= fold <= folds, got fold {fold} of {folds}")
    units = np.asarray(units)
    if units.shape != (len(table),):
        raise ConfigError(f"need one unit id per row ({len(table)}), got shape {units.shape}")
    labels = table[stratify].to_numpy()
    fold_of_row = _assign_units(units, labels, np.full(folds, 1.0 / folds), seed, {})
    train_share, valid_share = (float(value) for value in _check_fractions(fractions)[:2])
    if train_share <= 0 or valid_share <= 0:
        raise ConfigError(f"cross-validation needs positive train and valid fractions, got {list(fractions)}")
    rest = fold_of_row != fold - 1
    # A different seed for the train/valid cut than for the folds, and the same one for every fold.
    inner = _assign_units(
        units[rest], labels[rest], np.array([train_share, valid_share]) / (train_share + valid_share), seed + 1, {}
    )
    split_index = np.full(len(table), SPLITS.index("test"), dtype=np.int64)
    split_index[rest] = inner  # 0 = train, 1 = valid, the first two entries of SPLITS
    return _as_split_names(table, split_index)


def split_by_group(
    table: pd.DataFrame,
    group_column: str = "group",
    *,
    clusters: np.ndarray | Sequence[int] | None = None,
    test_groups: Iterable[str] | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    grouped_label: int = 1,
    ungrouped: Iterable[str] = ("unknown",),
) -> pd.Series:
    """Hold out whole groups (IS families): rows of class `grouped_label` that share a group stay together, so
    test families are never seen in training. Other rows (negatives) and rows whose group is in `ungrouped` move
    as similarity clusters. With `clusters`, groups joined by a near-duplicate pair also stay together, so no
    test sequence has a near-duplicate in train. `test_groups` fixes the test families; otherwise the greedy
    assignment picks them to reach the fractions.
    """
    fractions = _check_fractions(fractions)
    n = len(table)
    labels = table["label"].to_numpy()
    groups = table[group_column].astype(str).to_numpy()
    grouped = (labels == grouped_label) & ~np.isin(groups, list(ungrouped))
    rows = np.flatnonzero(grouped)
    codes, _ = pd.factorize(groups[rows])
    _, first = np.unique(codes, return_index=True)
    links = [np.stack([rows[first[codes]], rows], axis=1)]  # each grouped row to its group's first row
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (n,):
            raise ConfigError(f"need one cluster id per row ({n}), got shape {clusters.shape}")
        order = np.argsort(clusters, kind="stable")
        same = clusters[order[1:]] == clusters[order[:-1]]
        links.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
    units = _components(n, np.concatenate(links))
    allowed: dict[int, list[int]] = {}
    if test_groups is not None:
        test_groups = set(test_groups)
        unknown = test_groups - set(groups[grouped])
        if unknown:
            raise ConfigError(f"test group(s) not in column '{group_column}': {', '.join(sorted(unknown))}")
        test, not_test = SPLITS.index("test"), [SPLITS.index("train"), SPLITS.index("valid")]
        for unit in np.unique(units[grouped]):
            unit_groups = set(groups[(units == unit) & grouped])
            allowed[int(unit)] = [test] if unit_groups & test_groups else not_test
            if unit_groups & test_groups and unit_groups - test_groups:
                log.warning("groups %s are linked by near-duplicates; all go to test", sorted(unit_groups))
    return _as_split_names(table, _assign_units(units, labels, fractions, seed, allowed))


def region_bounds(lengths: Mapping[str, int], fractions: Sequence[float]) -> list[tuple[str, int, int, str]]:
    """(contig, start, end, split) stretches: each contig cut in coordinate order into train (from its start),
    valid and test by `fractions`. A genome-scan evaluation restricted to the test stretches is held out."""
    shares = _check_fractions(fractions)
    regions = []
    for contig, length in lengths.items():
        cuts = np.round(np.r_[0.0, np.cumsum(shares)] * int(length)).astype(np.int64)
        cuts[-1] = int(length)
        regions += [
            (contig, int(cuts[i]), int(cuts[i + 1]), SPLITS[i]) for i in range(len(SPLITS)) if cuts[i + 1] > cuts[i]
        ]
    return regions


def split_by_region(table: pd.DataFrame, regions: Sequence[tuple[str, int, int, str]]) -> pd.Series:
    """Split name per row by where its `contig`/`start`/`end` lie among `regions` (:func:`region_bounds`); None
    for a record that crosses a boundary or lies on no region, so no window is shared by two splits."""
    names = np.full(len(table), None, dtype=object)
    for contig, start, end, split in regions:
        inside = (table["contig"] == contig) & (table["start"] >= start) & (table["end"] <= end)
        names[inside.to_numpy()] = split
    return pd.Series(names, index=table.index, dtype=object, name="split")


# --- split record --------------------------------------------------------------------------------------------


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_split_record(
    path: str | os.PathLike[str],
    *,
    method: str,
    seed: int,
    params: Mapping[str, Any],
    assignments: Mapping[str, str] | pd.Series,
) -> None:
    """Write which split every id went to and how (method, seed, thresholds), atomically.

    `.json` gives one JSON object; any other suffix a TSV (id, split) whose first line is a '#' comment holding
    the same metadata as JSON, which ``pandas.read_csv(..., comment="#")`` skips.
    """
    assignments = pd.Series(assignments, dtype=object)
    bad = sorted(set(assignments) - set(SPLITS))
    if bad:
        raise ConfigError(f"{path}: unknown split name(s) {bad}; expected {', '.join(SPLITS)}")
    meta = {
        "method": method,
        "seed": int(seed),
        "params": _json_ready(dict(params)),
        "counts": {split: int((assignments == split).sum()) for split in SPLITS},
    }
    if Path(path).suffix == ".json":
        record = {**meta, "assignments": {str(key): str(value) for key, value in assignments.items()}}
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")
        return
    lines = [f"# {json.dumps(meta, sort_keys=True)}", "id\tsplit"]
    lines += [f"{key}\t{value}" for key, value in assignments.items()]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_split_record(path: str | os.PathLike[str]) -> tuple[dict[str, Any], pd.Series]:
    """The metadata and id -> split assignments written by :func:`write_split_record`."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".json":
        record = json.loads(text)
        return {key: value for key, value in record.items() if key != "assignments"}, pd.Series(
            record["assignments"], dtype=object, name="split"
        )
    first, _, body = text.partition("\n")
    rows = [line.split("\t") for line in body.splitlines()[1:] if line]
    return json.loads(first[1:]), pd.Series({key: value for key, value in rows}, dtype=object, name="split")


def heldout_regions(splits: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """The test stretches (contig, start, end) of a task split by region; empty for any other split."""
    meta, _ = read_split_record(splits)
    regions = meta["params"].get("regions", [])
    return [(contig, int(start), int(end)) for contig, start, end, split in regions if split == "test"]
