"""The SLURM profile on a real SLURM (issue 8).

`localhost_slurm.sh` starts a single-node SLURM 22.05 on localhost (Debian's slurm-wlm, installed with apt-get when
missing), with partitions `cpu` and `gpu` and one fake GPU. The workflow then runs `tests/slurm/config.yaml` through
`--executor slurm` with workflow/profiles/slurm, in which only the site names (partitions, account) are replaced, and
the jobs SLURM ran are checked against the profile: GPU-tagged rules on the GPU partition with one GPU, the others
on the CPU partition without. The outputs must equal those of a local run of the same config.

Needs root and apt-get (or SLURM already installed by that script). Elsewhere it skips with the reason; with
GENOLM_REQUIRE_SLURM=1 (CI, `.ci/run`) it fails instead.
"""

from __future__ import annotations

import fcntl
import gzip
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SETUP = HERE / "localhost_slurm.sh"
CONFIG = HERE / "config.yaml"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "workflow" / "profiles" / "default"
# The profile's site names, and what this test cluster calls them. Without slurmdbd the plugin cannot check an
# account, and SLURM records any name.
SITE = {"CPU_PARTITION": "cpu", "GPU_PARTITION": "gpu", "YOUR_ACCOUNT": "genolmci"}
# The GPU-tagged jobs of tests/slurm/config.yaml (its scan is one job, not scattered into parts).
GPU_RULES = {"train_classifier", "scan_genome"}
LOCK = Path("/var/lock/genolm-localhost-slurm.lock")
REQUIRED = os.environ.get("GENOLM_REQUIRE_SLURM") == "1"
RUN_TIMEOUT = 900  # seconds; the run takes about 2 minutes, and a workflow polling a lost job would wait forever

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (GENOLM_REQUIRE_SLURM=1)")
    pytest.skip(reason)


def snakemake(*args: str, timeout: int = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """Snakemake in its own process group, killed with everything it started when `timeout` runs out."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # snakemake cancels its SLURM jobs on SIGTERM
            try:
                output, _ = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
            pytest.fail(f"snakemake ran past {timeout} s and was killed:\n{output[-5000:]}")
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def localhost_slurm(action: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SETUP), action], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm_cluster():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    if os.geteuid() != 0:
        unavailable("a localhost SLURM needs root")
    if not (shutil.which("apt-get") or shutil.which("slurmctld")):
        unavailable("no apt-get to install slurm-wlm, and no SLURM installed")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        deadline = time.monotonic() + 1200
        while True:  # one test cluster per machine: another session's run finishes first
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    unavailable(f"{LOCK} stayed locked by another test session for 20 minutes")
                time.sleep(5)
        try:
            started = localhost_slurm("start", timeout=900)
            if started.returncode != 0:
                reason = started.stderr.strip().splitlines()[-1] if started.stderr.strip() else "no message"
                if started.returncode != 77:
                    print(started.stderr[-5000:], file=sys.stderr)
                unavailable(f"localhost SLURM not started (exit {started.returncode}): {reason}")
            yield
        finally:
            stopped = localhost_slurm("stop", timeout=180)
            print(stopped.stderr, file=sys.stderr)


def site_profile(directory: Path) -> Path:
    """workflow/profiles/slurm with its site names replaced, and nothing else."""
    text = PROFILE.read_text()
    for placeholder, name in SITE.items():
        assert placeholder in text, f"the profile no longer names {placeholder}"
        text = text.replace(placeholder, name)
    directory.mkdir()
    (directory / "config.yaml").write_text(text)
    return directory


def slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job SLURM ran from `workdir` (finished jobs stay listed: MinJobAge is an hour on the test cluster)."""
    shown = subprocess.run(["scontrol", "-d", "-o", "show", "job"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    jobs = []
    for line in shown.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            fields["Rule"] = re.match(r"rule_(\w+?)(?:_wildcards_|$)", fields["Comment"]).group(1)
            jobs.append(fields)
    return jobs


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("slurm")
    slurm_dir, local_dir = base / "slurm", base / "local"
    slurm_args = [
        "--profile",
        str(site_profile(base / "profile")),
        "--workflow-profile",
        "none",
        "--configfile",
        str(CONFIG),
        "--directory",
        str(slurm_dir),
        # No slurmdbd on the test cluster, so no sacct: query squeue (its MinJobAge is well above 3 x the wait).
        "--slurm-status-command",
        "squeue",
        # Poll every 5 s instead of the default 40 s: each level of the DAG waits for one poll.
        "--slurm-init-seconds-before-status-checks",
        "5",
    ]
    started = time.monotonic()
    result = snakemake(*slurm_args)
    print(f"SLURM run: {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert result.returncode == 0, result.stdout[-8000:]
    local = snakemake(
        "--workflow-profile", str(LOCAL_PROFILE), "--configfile", str(CONFIG), "--directory", str(local_dir), "-c2"
    )
    assert local.returncode == 0, local.stdout[-8000:]
    return {"slurm": slurm_dir, "local": local_dir, "args": slurm_args}


def test_every_job_ran_on_slurm_and_only_training_and_scanning_asked_for_a_gpu(runs):
    jobs = slurm_jobs(runs["slurm"])
    summary = "\n".join(
        f"{job['JobId']:>5} {job['Rule']:<20} {job['Partition']:<4} {job['JobState']:<10} "
        f"TresPerJob={job.get('TresPerJob', '-')} JOB_GRES={job.get('JOB_GRES', '-')} Account={job['Account']}"
        for job in jobs
    )
    print(summary, file=sys.stderr)
    ran = {job["Rule"] for job in jobs}
    assert GPU_RULES | {"make_demo", "evaluate_classifier", "build_report"} <= ran, summary
    assert "all" not in ran  # the target rule stays on the submitting host
    for job in jobs:
        assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", summary
        assert job["Account"] == SITE["YOUR_ACCOUNT"], summary
        if job["Rule"] in GPU_RULES:
            assert job["Partition"] == "gpu", summary
            assert job.get("TresPerJob") == "gres:gpu:1", summary  # what sbatch --gpus=1 asked for
            assert job.get("JOB_GRES") == "gpu:testgpu:1", summary  # what SLURM allocated
        else:
            assert job["Partition"] == "cpu", summary
            assert "gpu" not in job.get("TresPerJob", "") + job.get("JOB_GRES", "(null)"), summary


def test_the_same_command_again_submits_nothing(runs):
    """Resuming is running the same command again: finished jobs are not resubmitted. (The same command: the
    report's params hold the command line, so another command line reruns build_report.)"""
    result = snakemake(*runs["args"], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Nothing to be done" in result.stdout
    assert "submitted" not in result.stdout


def test_outputs_equal_those_of_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    for table in ("tables/metrics.tsv", "evaluate/promoter/cnn/seed1/predictions.tsv", "data/promoter/test.tsv"):
        assert (slurm / table).read_text() == (local / table).read_text(), table
    for calls in ("calls.bed.gz", "calls.gff3.gz"):
        path = Path("scan/demo/promoter/cnn") / calls
        assert gzip.decompress((slurm / path).read_bytes()) == gzip.decompress((local / path).read_bytes()), path
    checkpoint = "train/promoter/cnn/seed1/model.safetensors"
    trained, reference = load_file(slurm / checkpoint), load_file(local / checkpoint)
    assert trained.keys() == reference.keys()
    for name, tensor in trained.items():
        assert (tensor == reference[name]).all(), name
    assert yaml.safe_load((slurm / "train/promoter/cnn/seed1/config.yaml").read_text()) == yaml.safe_load(
        (local / "train/promoter/cnn/seed1/config.yaml").read_text()
    )
    assert (slurm / "report/index.html").stat().st_size > 10_000
