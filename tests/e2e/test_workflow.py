"""Static checks of the Snakemake workflow and the tiny end-to-end run."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pysam
import pytest
from workflow_run import PROFILE, REPO, TINY, snakemake

CONFIGS = sorted([REPO / "config" / "config.yaml", *REPO.glob("config/*.yaml"), *REPO.glob("tests/e2e/*.yaml")])


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", sorted(set(CONFIGS)), ids=lambda p: str(p.relative_to(REPO)))
def test_dry_run_of_every_shipped_config(config, tmp_path):
    result = snakemake("--configfile", str(config), "--directory", str(tmp_path), "--dry-run", "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    data_rule = "build_task_dataset" if config.name == "benchmarks.yaml" else "make_demo"
    for rule in (data_rule, "train_classifier", "evaluate_classifier", "scan_genome", "build_report"):
        assert rule in result.stdout
    if config.name == "benchmarks.yaml":  # a promoter task split by region, scanned on its own annotated genome
        assert "results/scan/mg1655/regulondb/cnn/context/evaluation.tsv" in result.stdout
        assert "results/scan/plasmids/regulondb/cnn/context/scores.bedgraph.gz" in result.stdout  # borrows the fit
        assert "results/evaluate/ecoli/cnn/ensemble/metrics.tsv" in result.stdout  # 3 seeds: a seed ensemble
        assert "results/evaluate/regulondb/kmermlp/ensemble/metrics.tsv" not in result.stdout  # not trained there
        ensemble = "results/evaluate/{}/model_ensembles/cnntransformermlp/metrics.tsv"
        assert ensemble.format("ecoli") in result.stdout
        assert ensemble.format("humannontata") not in result.stdout  # no transformer there: no model ensemble


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["tasks"]["promoter"].update(models=["cnn", "nosuch"]), "names unknown model 'nosuch'"),
        (lambda c: c["tasks"]["promoter"].update(split={"folds": 2}), "split.folds needs a real source"),
        (lambda c: c["models"]["cnn"].update(seeds=[]), "seeds"),
        (
            lambda c: c["evaluate"]["model_ensembles"].update(both=["cnn", "nosuch"]),
            "evaluate.model_ensembles.both names unknown model 'nosuch'",
        ),
        (lambda c: c["evaluate"]["model_ensembles"].update(cnn=["cnn", "kmermlp"]), "has the name of a model"),
        (lambda c: c["evaluate"]["model_ensembles"].update(alone=["cnn"]), "model_ensembles"),
    ],
)
def test_cross_references_in_the_config_are_checked_before_any_job(tmp_path, change, message):
    import yaml

    config = yaml.safe_load(TINY.read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--configfile", str(path), "--directory", str(tmp_path), "--dry-run", "--cores", "1")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_seed_ensemble_scans_read_every_seed_and_the_ensemble_threshold(tmp_path):
    """scan.seed_ensemble (a dry run, no job): the scattered parts of the two-seed k-mer MLP's scans score with
    both seeds and the gather takes the seed ensemble's threshold; the one-seed CNN scans as before."""
    import re

    import yaml

    config = yaml.safe_load(TINY.read_text())
    config["scan"].update(seed_ensemble=True, models=["cnn", "kmermlp"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--configfile", str(path), "--directory", str(tmp_path), "--dry-run", "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    inputs: dict[str, list[set[str]]] = {}
    for rule, files in re.findall(r"rule (\w+):\n\s+input: ([^\n]+)", result.stdout):
        inputs.setdefault(rule, []).append(set(files.split(", ")))

    def scans(rule: str, task: str, model: str) -> list[set[str]]:
        prefix = f"results/train/{task}/{model}/"
        return [files for files in inputs[rule] if any(name.startswith(prefix) for name in files)]

    seeds = {f"results/train/promoter/kmermlp/seed{seed}/model.safetensors" for seed in (1, 2)}
    parts = scans("score_genome_part", "promoter", "kmermlp")
    assert len(parts) == 2 and all(seeds <= files for files in parts)  # scan.parts: 2, each scored by both seeds
    (gather,) = scans("scan_genome", "promoter", "kmermlp")
    assert seeds | {"results/evaluate/promoter/kmermlp/ensemble/metrics.tsv"} <= gather
    assert "results/evaluate/promoter/kmermlp/seed1/metrics.tsv" not in gather
    (single,) = scans("scan_genome", "promoter", "cnn")
    assert "results/evaluate/promoter/cnn/seed1/metrics.tsv" in single


def test_models_that_differ_only_in_their_classifier_share_one_language_model(tmp_path):
    """A dry run with ulmfitemb, ulmfit with another classifier: ulmfit's LMs are pretrained and fine-tuned once,
    and ulmfitemb's classifiers read them; an LM fine-tuned longer is trained again from the shared genome LM."""
    import re

    import yaml

    config = yaml.safe_load(TINY.read_text())
    ulmfit = config["models"]["ulmfit"]
    config["models"]["ulmfitemb"] = {**ulmfit, "transfer": "embedding", "train": {**ulmfit["train"], "lr": 0.01}}
    config["models"]["ulmfitlong"] = {**ulmfit, "finetune": {**ulmfit["finetune"], "epochs": 2}}
    config["lm"]["models"] = ["ulmfit", "ulmfitemb"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--configfile", str(path), "--directory", str(tmp_path), "--dry-run", "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = set(re.findall(r"output: ([^\n]+)", result.stdout))
    pretrained = {name for name in outputs if "/lm.safetensors" in name and name.startswith("results/pretrain/")}
    assert pretrained == {
        "results/pretrain/ulmfit/seed1/lm.safetensors, results/pretrain/ulmfit/seed1/lm.json, "
        "results/pretrain/ulmfit/seed1/history.tsv",
        "results/pretrain/transformer/seed1/lm.safetensors, results/pretrain/transformer/seed1/lm.json, "
        "results/pretrain/transformer/seed1/history.tsv",
    }
    finetuned = sorted(re.findall(r"output: results/finetune/(\w+)/(\w+)/seed1/lm.safetensors", result.stdout))
    assert finetuned == [("is", "ulmfit"), ("is", "ulmfitlong"), ("promoter", "ulmfit"), ("promoter", "ulmfitlong")]
    inputs = re.findall(r"rule (\w+):\n\s+input: ([^\n]+)\n\s+output: ([^\n]+)", result.stdout)
    starts = {
        output.split("/")[3]: next(name for name in files.split(", ") if name.endswith("lm.safetensors"))
        for rule, files, output in inputs
        if rule == "train_classifier" and output.startswith("results/train/promoter/ulmfit")
    }
    assert starts == {
        "ulmfit": "results/finetune/promoter/ulmfit/seed1/lm.safetensors",
        "ulmfitemb": "results/finetune/promoter/ulmfit/seed1/lm.safetensors",
        "ulmfitlong": "results/finetune/promoter/ulmfitlong/seed1/lm.safetensors",
    }
    long_lm = next(files for rule, files, output in inputs if output.startswith("results/finetune/is/ulmfitlong/"))
    assert "results/pretrain/ulmfit/seed1/lm.safetensors" in long_lm
    assert "results/lm/quality/pretrain/ulmfitemb" not in result.stdout  # lm.models' ulmfitemb is ulmfit's LM


def test_a_bad_config_stops_before_any_job(tmp_path):
    result = snakemake(
        "--configfile",
        str(TINY),
        "--config",
        "devcie=cpu",
        "--directory",
        str(tmp_path),
        "--dry-run",
        "--cores",
        "1",
    )
    assert result.returncode != 0
    assert "devcie" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
def test_every_stage_leaves_its_outputs(tiny_run):
    results = tiny_run / "results"
    expected = [
        "data/demo/genome.fa",
        "data/demo/truth.gff3",
        "data/promoter/train.tsv",
        "tokens/promoter/k1_s1/train.npz",
        "tokens/is/k4_s2/vocab.json",
        "tokens/corpus/demo/k4_s2.npz",
        "pretrain/ulmfit/seed1/lm.safetensors",
        "finetune/promoter/ulmfit/seed1/lm.safetensors",
        "finetune/is/ulmfit/seed1/history.tsv",
        "train/promoter/ulmfit/seed1/model.safetensors",
        "train/is/cnn/seed1/model.json",
        "pretrain/transformer/seed1/lm.safetensors",
        "train/promoter/transformer/seed1/model.safetensors",
        "train/is/kmermlp/seed1/model.safetensors",
        "train/is/cnn/seed1/history.tsv",
        "train/is/cnn/seed1/config.yaml",
        "evaluate/promoter/cnn/seed1/predictions.tsv",
        "evaluate/is/kmermlp/ensemble/metrics.tsv",
        "evaluate/is/model_ensembles/cnnkmer/predictions.tsv",
        "evaluate/is/transformer/seed1/embedding_2d.tsv",
        "evaluate/promoter/ulmfit/seed1/embeddings.npz",
        "tables/metrics.tsv",
        "tables/summary.tsv",
        "scan/demo/promoter/cnn/calls.bed.gz",
        "scan/demo/is/cnn/calls.gff3.gz.tbi",
        "scan/demo/is/cnn/scores.bedgraph.gz",
        "scan/demo/is/cnn/evaluation.tsv",
        "report/index.html",
        "report/benchmarks.md",
        "annotate/demo/demo_annotation.gff3",
        "annotate/demo/is/cnn/is_amr_calls.tsv",
        "annotate/demo/is/cnn/amr_genes.tsv",
        "homology/demo/calls.gff3.gz.tbi",
        "homology/demo/evaluation.tsv",
    ]
    missing = [path for path in expected if not (results / path).is_file()]
    assert not missing
    html = (results / "report" / "index.html").read_text()
    for heading in (
        "Classifier metrics",
        "Beside the published",
        "calibration and training curves",
        "Language models",
        "Classifier embeddings (t-SNE)",
        "Runtime per stage",
        "IS calls near antimicrobial-resistance genes",
    ):
        assert heading in html
    assert "Genome scans" in html and "Provenance" in html
    assert html.count("data:image/png;base64,") >= 5  # 2 ROC + 2 training curves + at least 1 track
    assert (tiny_run / "logs" / "train_classifier" / "promoter_cnn_seed1.log").stat().st_size > 0
    assert (tiny_run / "benchmarks" / "scan_genome" / "demo_is_cnn.tsv").is_file()
    assert (tiny_run / "benchmarks" / "build_task_dataset").is_dir() or (tiny_run / "benchmarks" / "make_demo").is_dir()
    homology = pd.read_csv(results / "homology" / "demo" / "evaluation.tsv", sep="\t").set_index("metric")["value"]
    assert float(homology["recall"]) > 0.9  # the demo's own IS families are its library
    assert (tiny_run / "benchmarks" / "score_genome_part").is_dir()  # scan.parts: 2 scatters the scans
    markdown = (results / "report" / "benchmarks.md").read_text()
    assert "| promoter | demo split |" in markdown and "## Runtime" in markdown
    assert not (tiny_run / "docs").exists()  # docs/benchmarks.md only where report.docs asks for it


@pytest.mark.e2e
def test_models_beat_the_trivial_baselines(tiny_run):
    metrics = pd.read_csv(tiny_run / "results" / "tables" / "metrics.tsv", sep="\t")
    mcc = metrics[metrics["metric"] == "mcc"].groupby(["task", "model"])["value"].mean()  # kmermlp: mean of 2 seeds
    for task in ("promoter", "is"):
        baseline = max(mcc[(task, "baseline_majority")], mcc[(task, "baseline_gc_content")])
        assert mcc[(task, "cnn")] > baseline + 0.2, (task, mcc[task].to_dict())
        # The tiny ULMFiT is trained for the plumbing only (a 150 kb synthetic genome teaches its language model
        # almost nothing); its row must exist with real numbers, but it is not expected to win here.
        for model in ("ulmfit", "transformer", "kmermlp", "kmermlp_ensemble", "cnnkmer_ensemble"):
            assert -1.0 <= mcc[(task, model)] <= 1.0
        assert (task, "cnn_ensemble") not in mcc.index  # one seed: no ensemble


@pytest.mark.e2e
def test_scan_outputs_are_valid_indexed_files(tiny_run):
    scan = tiny_run / "results" / "scan" / "demo"
    with pysam.TabixFile(str(scan / "is" / "cnn" / "calls.bed.gz")) as bed:
        contigs = bed.contigs
        records = [line.split("\t") for contig in contigs for line in bed.fetch(contig)]
    assert records, "the IS scan found nothing on the demo genome"
    assert all(int(r[1]) < int(r[2]) for r in records)
    evaluation = pd.read_csv(scan / "is" / "cnn" / "evaluation.tsv", sep="\t").set_index("metric")["value"]
    assert float(evaluation["recall"]) > 0.5
    with pysam.TabixFile(str(scan / "promoter" / "cnn" / "calls.gff3.gz")) as gff:
        lines = [line.split("\t") for contig in gff.contigs for line in gff.fetch(contig)]
    assert lines and all(len(fields) == 9 and fields[2] == "TSS" and fields[6] in "+-" for fields in lines)


def dry_run_on(workdir, config_text: str, tmp_path):
    """A dry run in a finished working directory with another config (its text); it must succeed."""
    path = tmp_path / "config.yaml"
    path.write_text(config_text)
    result = snakemake(
        "--workflow-profile", str(PROFILE), "--configfile", str(path), "--directory", str(workdir),
        "--dry-run", "--cores", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.e2e
def test_changing_a_classifier_or_adding_a_seed_retrains_only_that(tiny_run, tmp_path):
    """On the finished tiny run (a dry run, nothing changes there): a new lr for ULMFiT's classifier retrains its
    classifiers but neither its pretrained nor its fine-tuned LMs; a second CNN seed trains only that seed."""
    import re

    import yaml

    config = yaml.safe_load(TINY.read_text())
    config["models"]["ulmfit"]["train"]["lr"] = 0.01
    config["models"]["cnn"]["seeds"] = [1, 2]
    # sorted keys: the workflow compares settings in one key order
    result = dry_run_on(tiny_run, yaml.safe_dump(config), tmp_path)
    assert "rule pretrain_lm:" not in result.stdout and "rule finetune_lm:" not in result.stdout
    trained = set(re.findall(r"output: results/train/(\w+)/(\w+)/seed(\d+)/model.safetensors", result.stdout))
    assert trained == {(task, "ulmfit", "1") for task in ("promoter", "is")} | {
        (task, "cnn", "2") for task in ("promoter", "is")
    }


@pytest.mark.e2e
def test_writing_the_config_in_another_key_order_reruns_nothing(tiny_run, tmp_path):
    """Every settings block of the tiny config with its keys reversed (tasks and models kept in their order): Snakemake
    compares params by their repr, which follows key order, so without a canonical order this reran every job."""
    import yaml

    def reversed_blocks(value, keep_order=False):
        if isinstance(value, dict):
            keys = list(value) if keep_order else list(reversed(list(value)))
            return {key: reversed_blocks(value[key]) for key in keys}
        return value

    config = yaml.safe_load(TINY.read_text())
    reordered = {key: reversed_blocks(value, keep_order=key in ("tasks", "models")) for key, value in config.items()}
    reordered = dict(reversed(list(reordered.items())))
    assert yaml.safe_dump(reordered, sort_keys=False) != yaml.safe_dump(config, sort_keys=False)
    result = dry_run_on(tiny_run, yaml.safe_dump(reordered, sort_keys=False), tmp_path)
    assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_rerun_with_the_same_seed_gives_the_same_tables(tiny_run, tmp_path):
    """Same config and seed, fresh directory: identical metric tables."""
    result = snakemake(
        "--workflow-profile",
        str(PROFILE),
        "--configfile",
        str(TINY),
        "--directory",
        str(tmp_path),
        "--cores",
        "2",
        "results/tables/metrics.tsv",
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first = (tiny_run / "results" / "tables" / "metrics.tsv").read_text()
    assert (tmp_path / "results" / "tables" / "metrics.tsv").read_text() == first
