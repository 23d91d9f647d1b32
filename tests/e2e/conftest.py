"""The tiny end-to-end run, shared by every e2e test module (it takes minutes; run it once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_run import PROFILE, TINY, snakemake


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A working directory in which the tiny config (tests/e2e/config.yaml) ran to the end."""
    workdir = tmp_path_factory.mktemp("e2e")
    result = snakemake(
        "--workflow-profile",
        str(PROFILE),
        "--configfile",
        str(TINY),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return workdir
