"""Several outputs that appear together or not at all (a FASTA + GenBank pair, the two FASTQs of a run)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["staged_outputs"]


def staged_path(dest: Path) -> Path:
    """A hidden sibling that keeps `dest`'s suffix (the stored form follows the name) and is stable across runs,
    so a download interrupted there can resume."""
    return dest.with_name(".staged." + dest.name)


@contextmanager
def staged_outputs(dests: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield staging paths to fill; when the block succeeds each one is renamed onto its destination, when it
    fails every staged file is removed and no destination is touched.

    The renames are atomic one by one; only a crash between two renames could leave one without the other.
    """
    targets = [Path(dest) for dest in dests]
    staged = [staged_path(target) for target in targets]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield staged
    except BaseException:
        for path in staged:
            path.unlink(missing_ok=True)
        raise
    for path, target in zip(staged, targets, strict=True):
        os.replace(path, target)
