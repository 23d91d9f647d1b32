"""What every output records about how it was made: config, package versions, input checksums, git commit."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import genolm

_PACKAGES = (
    "torch",
    "numpy",
    "pandas",
    "pysam",
    "biopython",
    "matplotlib",
    "safetensors",
    "snakemake",
    "scikit-learn",
)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions from installed metadata, so that recording them never imports heavy packages."""
    versions = {"python": platform.python_version(), "genolm": genolm.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_commit(directory: str | Path | None = None) -> str:
    """The commit of the checkout holding `directory` (default: genolm's own source, wherever the run's working
    directory is), with '-dirty' when it has changes, or 'unknown' outside git."""
    directory = Path(__file__).resolve().parent if directory is None else directory
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, str]:
    """The machine a figure was measured on: CPU model and the cores this process may use, memory, GPU."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "unknown"
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        gpu = "unknown (torch absent)"
    return {
        "system": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(),
        "cores": str(cores),
        "memory": memory,
        "gpu": gpu,
    }


def input_checksums(inputs: Mapping[str, str | Path]) -> dict[str, dict[str, str]]:
    return {name: {"path": str(path), "sha256": sha256_file(path)} for name, path in inputs.items()}


def provenance(settings: Mapping[str, Any], inputs: Mapping[str, str | Path]) -> dict[str, Any]:
    """The record stored beside a checkpoint or table; deliberately free of timestamps so reruns are identical."""
    return {
        "settings": dict(settings),
        "versions": package_versions(),
        "inputs": input_checksums(inputs),
    }
