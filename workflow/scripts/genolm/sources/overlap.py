"""Cross-dataset overlap: how many sequences of one task also occur (exactly or nearly) in another.

Published benchmarks are often cut from the same source (794 of CNNProm's 839 E. coli promoters are iPromoter-2L
positives), so training on one and testing on the other would leak. The table makes that visible in the report.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from genolm.atomic import atomic_writer
from genolm.datasets import read_task_table
from genolm.sources.splits import dataset_overlap

log = logging.getLogger(__name__)

OVERLAP_COLUMNS = ("task_a", "task_b", "n_a", "n_b", "exact", "near", "threshold")


def overlap_table(tables: Mapping[str, Sequence[str | Path]], threshold: float = 0.5) -> pd.DataFrame:
    """One row per ordered pair of tasks: sequences of A found in B exactly (either strand) or nearly."""
    sequences = {
        task: pd.concat([read_task_table(path) for path in paths])["sequence"].tolist()
        for task, paths in tables.items()
    }
    rows = []
    for task_a, task_b in itertools.permutations(sequences, 2):
        counts = dataset_overlap(sequences[task_a], sequences[task_b], threshold)
        rows.append({"task_a": task_a, "task_b": task_b, **counts, "threshold": threshold})
        if counts["near"]:
            log.warning(
                "%s: %d of %d sequences have a near-duplicate in %s", task_a, counts["near"], counts["n_a"], task_b
            )
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def write_overlap_table(tables: Mapping[str, Sequence[str | Path]], output: str | Path, threshold: float = 0.5) -> None:
    table = overlap_table(tables, threshold)
    with atomic_writer(output) as handle:
        table.to_csv(handle, sep="\t", index=False)
