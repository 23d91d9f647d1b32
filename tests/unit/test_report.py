"""Report tables built from training histories."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genolm.report import (
    calibration_table,
    confusion_table,
    language_model_figure,
    language_model_table,
    model_comparison,
)


def _history(path, losses):
    frame = pd.DataFrame({"epoch": range(1, len(losses) + 1), "valid_loss": losses, "valid_accuracy": 0.3})
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


def test_language_model_table_compares_with_the_no_learning_loss(tmp_path):
    entries = [
        {"label": "ulmfit pretraining", "history": _history(tmp_path / "a.tsv", [2.9, 2.7, 2.71]), "stride": 2,
         "objective": "next"},
        {"label": "transformer pretraining", "history": _history(tmp_path / "b.tsv", [5.0]), "stride": 1,
         "objective": "masked"},
    ]  # fmt: skip
    table = language_model_table(entries).set_index("language model")
    ulmfit = table.loc["ulmfit pretraining"]
    assert ulmfit["best epoch"] == 2 and ulmfit["epochs"] == 3
    assert ulmfit["no-learning loss ln(4^stride)"] == pytest.approx(math.log(16), abs=1e-4)
    assert ulmfit["gain (nats)"] == pytest.approx(math.log(16) - 2.7, abs=1e-4)
    # a masked LM has no such baseline: the cells stay empty rather than wrong
    assert pd.isna(table.loc["transformer pretraining", "gain (nats)"])
    assert len(language_model_figure(entries).axes[0].lines) == 2


def test_model_comparison_names_the_best_model_and_any_rival_that_beats_ulmfit():
    rows = []
    for task, scores in {
        "ecoli": {"cnn": 0.80, "ulmfit": 0.75, "awdlstm": 0.70, "baseline_gc_content": 0.65},
        "cds": {"cnn": 0.90, "ulmfit": 0.95, "awdlstm": 0.85, "baseline_gc_content": 0.40},
    }.items():
        for model, value in scores.items():
            for seed, shift in ((1, -0.01), (2, 0.01)):  # mean over seeds is the value above
                rows.append({"task": task, "model": model, "seed": seed, "metric": "mcc", "value": value + shift})
    rows.append({"task": "ecoli", "model": "cnn", "seed": 1, "metric": "auroc", "value": 0.99})
    table = model_comparison(pd.DataFrame(rows), pretrained=["ulmfit"]).set_index("task")
    assert table.loc["ecoli", "cnn"] == pytest.approx(0.80)
    assert table.loc["ecoli", "best"] == "cnn" and table.loc["cds", "best"] == "ulmfit"
    assert table.loc["ecoli", "rival beats ULMFiT"] == "cnn by 0.050"
    assert table.loc["cds", "rival beats ULMFiT"] == "no"
    assert table.loc["ecoli", "baseline_gc_content"] == pytest.approx(0.65)  # shown, but never "best"


def test_calibration_table_bins_scores_and_counts_positives():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    scores = np.array([0.05, 0.15, 0.12, 0.55, 0.58, 0.95, 0.97, 1.0])
    table = calibration_table(labels, scores, bins=10).set_index("bin")
    assert list(table.index) == [0, 1, 5, 9]  # empty bins are left out; a score of 1.0 falls in the last bin
    assert table.loc[1, "n"] == 2 and table.loc[1, "observed"] == pytest.approx(0.5)
    assert table.loc[5, "predicted"] == pytest.approx(0.565) and table.loc[5, "observed"] == 1.0
    assert table.loc[9, "observed"] == pytest.approx(2 / 3) and table["n"].sum() == len(labels)


def test_confusion_table_takes_each_models_first_seed():
    rows = []
    for seed, counts in ((2, (9, 9, 9, 9, 0.9)), (1, (30, 5, 60, 10, 0.42))):
        for metric, value in zip(("tp", "fp", "tn", "fn", "threshold"), counts, strict=True):
            rows.append({"task": "ecoli", "model": "cnn", "seed": seed, "metric": metric, "value": value})
    rows.append({"task": "other", "model": "cnn", "seed": 1, "metric": "tp", "value": 1})
    table = confusion_table(pd.DataFrame(rows), "ecoli")
    assert table.to_dict("records") == [{"model": "cnn", "threshold": 0.42, "tp": 30, "fp": 5, "tn": 60, "fn": 10}]


def _write(path, frame):
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


def test_report_pools_folds_plots_embeddings_and_writes_the_markdown_tables(tmp_path):
    from genolm.benchmarks_doc import model_table, runtime_table
    from genolm.cv import expand_folds
    from genolm.report import build_report

    tasks = expand_folds(
        {
            "plain": {"source": "cnnprom_ecoli", "split": {"method": "random"}},
            "cv": {"source": "cnnprom_bsubtilis", "split": {"method": "random", "folds": 2}},
        }
    )
    rng = np.random.default_rng(0)
    rows, runs, embeddings = [], [], []
    for task in tasks:
        for model, mcc in (("cnn", 0.8 if task != "cvfold2" else 0.6), ("baseline_gc_content", 0.1)):
            rows += [(task, model, 1, "mcc", mcc, mcc - 0.1, mcc + 0.1), (task, model, 1, "tp", 5.0, np.nan, np.nan)]
        labels = rng.integers(0, 2, 30)
        predictions = pd.DataFrame(
            {"id": [f"s{i}" for i in range(30)], "split": "test", "label": labels, "score": rng.random(30)}
        )
        history = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.5], "valid_loss": [0.69, 0.6]})
        runs.append(
            {
                "task": task,
                "model": "cnn",
                "seed": 1,
                "predictions": _write(tmp_path / f"{task}_pred.tsv", predictions),
                "history": _write(tmp_path / f"{task}_hist.tsv", history),
            }
        )
        projection = predictions[["id", "label"]].assign(x=rng.random(30), y=rng.random(30))
        if task != "cvfold2":
            embeddings.append(
                {"task": task, "model": "cnn", "projection": _write(tmp_path / f"{task}_proj.tsv", projection)}
            )
    metrics = pd.DataFrame(rows, columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"])
    timing = pd.DataFrame({"s": [12.5], "max_rss": [100.0]})
    (tmp_path / "train_classifier").mkdir()
    timing_path = _write(tmp_path / "train_classifier" / "plain_cnn_seed1.tsv", timing)
    markdown = tmp_path / "docs" / "benchmarks.md"
    build_report(
        metrics_path=_write(tmp_path / "metrics.tsv", metrics),
        html_path=tmp_path / "index.html",
        figures_dir=tmp_path / "figures",
        runs=runs,
        scans=[],
        config={"tasks": tasks, "models": {"cnn": {"arch": "cnn"}}},
        region={},
        timing_paths=[timing_path],
        embeddings=embeddings,
        markdown_paths=[markdown],
        command="snakemake --configfile config/benchmarks.yaml",
    )
    page = (tmp_path / "index.html").read_text()
    assert "<h3>cv (random 2-fold CV)</h3>" in page and "cvfold2" not in page.split("Provenance")[0]
    assert (tmp_path / "figures" / "embeddings_plain.png").exists()
    assert (tmp_path / "figures" / "embeddings_cvfold1.png").exists()
    assert (tmp_path / "figures" / "roc_cvfold1.png").exists()
    assert not (tmp_path / "figures" / "roc_cvfold2.png").exists()
    assert "snakemake --configfile config/benchmarks.yaml" in page
    text = markdown.read_text()
    assert "snakemake --configfile config/benchmarks.yaml" in text
    assert "| cv | random 2-fold CV | **0.700** | 0.100 |" in text  # mean of the folds' 0.8 and 0.6
    assert "| plain | random split | **0.800** | 0.100 |" in text
    assert "| train_classifier | 1 | 12 |" in text
    assert model_table(metrics, tasks).splitlines()[0] == "| task | protocol | cnn | baseline_gc_content |"
    assert "all timed jobs" in runtime_table(pd.DataFrame({"step": ["a/x", "a/y"], "seconds": [1.0, 2.0]}))


def test_benchmark_steps_keep_the_rule_and_the_whole_job_name(tmp_path):
    from genolm.report import _benchmark_step, benchmark_files

    assert _benchmark_step("/x/benchmarks/download_dataset/isfinder/IS.fna.tsv") == "download_dataset/isfinder/IS.fna"
    assert _benchmark_step("benchmarks/train_classifier/ecoli_cnn_seed1.tsv") == "train_classifier/ecoli_cnn_seed1"
    (tmp_path / "benchmarks" / "a" / "b").mkdir(parents=True)
    (tmp_path / "benchmarks" / "a" / "b" / "c.tsv").write_text("s\n1\n")
    assert [p.name for p in benchmark_files(tmp_path / "benchmarks")] == ["c.tsv"]
    assert benchmark_files(tmp_path / "missing") == []


def test_regenerate_command_names_the_config_files_and_the_mirror():
    from genolm.benchmarks_doc import regenerate_command

    command = regenerate_command(["config/benchmarks.yaml"], "../shared/data")
    assert command == (
        ".venv/bin/snakemake --workflow-profile workflow/profiles/default --cores 2 "
        "--configfile config/benchmarks.yaml --config mirror=../shared/data"
    )
    assert "--config" not in regenerate_command([], "")
