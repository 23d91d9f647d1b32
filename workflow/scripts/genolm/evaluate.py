"""Test-set evaluation of classifiers and trivial baselines, as long tables (one row per metric).

The decision threshold is always chosen on the validation split and then applied, unchanged, to the test split.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.datasets import gc_fraction, read_task_table
from genolm.errors import InputFormatError
from genolm.metrics import binary_metrics, bootstrap_ci, choose_threshold

log = logging.getLogger(__name__)

REPORTED_METRICS = ("accuracy", "precision", "recall", "specificity", "mcc", "f1", "auroc", "auprc")
METRIC_COLUMNS = ("task", "model", "seed", "metric", "value", "ci_low", "ci_high")


def metric_rows(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    bootstrap: int,
    seed: int,
    labels: Mapping[str, object],
) -> pd.DataFrame:
    """One row per metric with its bootstrap 95% interval, plus the threshold and the test-set size."""
    values = binary_metrics(y_true, y_score, threshold)
    rows = []
    for metric in REPORTED_METRICS:
        low = high = float("nan")
        if bootstrap > 0:
            low, high = bootstrap_ci(y_true, y_score, threshold, metric, n=bootstrap, seed=seed)
        rows.append({**labels, "metric": metric, "value": values[metric], "ci_low": low, "ci_high": high})
    for extra in ("threshold", "n", "tp", "fp", "tn", "fn"):
        rows.append({**labels, "metric": extra, "value": float(values[extra]), "ci_low": np.nan, "ci_high": np.nan})
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, float_format="%.6g")


def evaluate_checkpoint(
    checkpoint: str | Path,
    valid_tokens: str | Path,
    test_tokens: str | Path,
    predictions_path: str | Path,
    metrics_path: str | Path,
    task: str,
    model_name: str,
    seed: int,
    threshold_metric: str = "mcc",
    bootstrap: int = 200,
    device: str = "auto",
) -> pd.DataFrame:
    """Score valid and test splits with a trained classifier; write predictions and the metric table."""
    from genolm.checkpoint import load_checkpoint
    from genolm.datasets import load_token_set
    from genolm.train import predict_proba, select_device

    torch_device = select_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=torch_device)
    scores, labels, ids = {}, {}, {}
    for split, path in (("valid", valid_tokens), ("test", test_tokens)):
        token_set, tokenizer = load_token_set(path)
        if tokenizer.to_dict() != meta["vocab"]:
            raise InputFormatError(
                f"{path}: tokenized with {tokenizer.to_dict()} but {checkpoint} expects {meta['vocab']}"
            )
        scores[split] = predict_proba(model, token_set, device=torch_device)
        labels[split], ids[split] = token_set.labels, token_set.ids
    predictions = pd.concat(
        pd.DataFrame({"id": ids[split], "split": split, "label": labels[split], "score": scores[split]})
        for split in ("valid", "test")
    )
    run = {"task": task, "model": model_name, "seed": seed}
    return evaluate_predictions(predictions, predictions_path, metrics_path, run, threshold_metric, bootstrap)


def evaluate_predictions(
    predictions: pd.DataFrame,
    predictions_path: str | Path,
    metrics_path: str | Path,
    run: Mapping[str, Any],
    threshold_metric: str = "mcc",
    bootstrap: int = 200,
) -> pd.DataFrame:
    """Choose the threshold on the `valid` rows of a predictions table (id, split, label, score), apply it to the
    `test` rows; write the table and the test metrics, labelled with `run` (task, model, seed; the seed also seeds
    the bootstrap)."""
    valid, test = predictions[predictions["split"] == "valid"], predictions[predictions["split"] == "test"]
    threshold = choose_threshold(valid["label"].to_numpy(), valid["score"].to_numpy(), metric=threshold_metric)
    log.info("threshold %.4f chosen on %d validation sequences (max %s)", threshold, len(valid), threshold_metric)
    write_tsv(predictions, predictions_path)
    seed = int(run["seed"])
    table = metric_rows(test["label"].to_numpy(), test["score"].to_numpy(), threshold, bootstrap, seed, run)
    write_tsv(table, metrics_path)
    return table


ENSEMBLE_SUFFIX = "_ensemble"


def read_predictions(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"id": str, "split": str})
    missing = {"id", "split", "label", "score"} - set(table.columns)
    if missing:
        raise InputFormatError(f"{path}: not a predictions table (missing {', '.join(sorted(missing))})")
    if table.duplicated(["split", "id"]).any():
        first = table.loc[table.duplicated(["split", "id"]), "id"].iloc[0]
        raise InputFormatError(f"{path}: sequence '{first}' appears twice in one split")
    return table


def ensemble_predictions(paths: Sequence[str | Path], weights: Sequence[float] | None = None) -> pd.DataFrame:
    """Mean probability over several runs (a model's seeds, or the runs of several models) for each valid and test
    sequence; `weights` (one per path) make it a weighted mean. Every run must have scored exactly the same
    sequences with the same labels."""
    if len(paths) < 2:
        raise InputFormatError(f"an ensemble needs at least two prediction tables, got {len(paths)}")
    if weights is not None and len(weights) != len(paths):
        raise ValueError(f"{len(weights)} ensemble weights for {len(paths)} prediction tables")
    tables = [read_predictions(path) for path in paths]
    first = tables[0].sort_values(["split", "id"], kind="stable").reset_index(drop=True)
    scores = [first["score"].to_numpy(dtype=float)]
    for path, table in zip(paths[1:], tables[1:], strict=True):
        table = table.sort_values(["split", "id"], kind="stable").reset_index(drop=True)
        keys = ["split", "id", "label"]
        same = len(table) == len(first) and (table[keys] == first[keys]).all(axis=None)
        if not same:
            raise InputFormatError(f"{path}: scores other sequences or labels than {paths[0]}; cannot average them")
        scores.append(table["score"].to_numpy(dtype=float))
    order = {"valid": 0, "test": 1}
    # np.mean when unweighted: a seed ensemble's scores stay the bits they were before weights existed
    mean = np.mean(scores, axis=0) if weights is None else np.average(scores, axis=0, weights=weights)
    merged = first.assign(score=mean)
    return merged.sort_values("split", key=lambda split: split.map(order), kind="stable").reset_index(drop=True)


def evaluate_ensemble(
    prediction_paths: Sequence[str | Path],
    predictions_path: str | Path,
    metrics_path: str | Path,
    task: str,
    model_name: str,
    seed: int,
    threshold_metric: str = "mcc",
    bootstrap: int = 200,
) -> pd.DataFrame:
    """The seed ensemble of one model: probabilities averaged over its runs, the threshold chosen again on the
    averaged validation scores, test metrics reported as model `<model>_ensemble` (seed column: `seed`, which
    also seeds the bootstrap)."""
    merged = ensemble_predictions(prediction_paths)
    log.info("ensemble of %d runs", len(prediction_paths))
    run = {"task": task, "model": f"{model_name}{ENSEMBLE_SUFFIX}", "seed": seed}
    return evaluate_predictions(merged, predictions_path, metrics_path, run, threshold_metric, bootstrap)


def model_ensemble_weights(member_runs: Mapping[str, Sequence[str | Path]]) -> tuple[list[str | Path], list[float]]:
    """The prediction tables of a model ensemble and their weights: each member model counts once, whatever its
    number of seeds (its seeds share its weight), so a model trained with three seeds does not outvote one
    trained with one."""
    if len(member_runs) < 2:
        raise InputFormatError(f"a model ensemble needs at least two models, got {list(member_runs)}")
    paths: list[str | Path] = []
    weights: list[float] = []
    for model, runs in member_runs.items():
        if not runs:
            raise InputFormatError(f"model ensemble member '{model}' has no prediction tables")
        paths.extend(runs)
        weights.extend([1.0 / (len(member_runs) * len(runs))] * len(runs))
    return paths, weights


def evaluate_model_ensemble(
    member_runs: Mapping[str, Sequence[str | Path]],
    predictions_path: str | Path,
    metrics_path: str | Path,
    task: str,
    ensemble_name: str,
    threshold_metric: str = "mcc",
    bootstrap: int = 200,
) -> pd.DataFrame:
    """A model ensemble (`evaluate.model_ensembles`): the mean probability of several models, each the mean of its
    seeds, evaluated like one classifier (threshold chosen again on validation) and reported as model
    `<ensemble_name>_ensemble`, seed 0, as a seed ensemble is: both are averaged classifiers."""
    paths, weights = model_ensemble_weights(member_runs)
    merged = ensemble_predictions(paths, weights)
    log.info("model ensemble of %s (%d runs)", ", ".join(member_runs), len(paths))
    run = {"task": task, "model": f"{ensemble_name}{ENSEMBLE_SUFFIX}", "seed": 0}
    return evaluate_predictions(merged, predictions_path, metrics_path, run, threshold_metric, bootstrap)


def baseline_scores(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, np.ndarray]]:
    """Scores of the trivial baselines on valid and test.

    majority: a constant (every sequence gets the training set's majority class).
    gc_content: GC fraction, sign chosen on the training split so that higher means the positive class.
    """
    train = tables["train"]
    majority = float(train["label"].mean() >= 0.5)
    gc_train = train["sequence"].map(gc_fraction).to_numpy()
    positives_richer = np.nanmean(gc_train[train["label"] == 1]) >= np.nanmean(gc_train[train["label"] == 0])
    sign = 1.0 if positives_richer else -1.0
    scores: dict[str, dict[str, np.ndarray]] = {"majority": {}, "gc_content": {}}
    for split in ("valid", "test"):
        table = tables[split]
        scores["majority"][split] = np.full(len(table), majority)
        scores["gc_content"][split] = sign * table["sequence"].map(gc_fraction).fillna(0.5).to_numpy()
    return scores


def evaluate_baselines(
    tables: Mapping[str, str | Path],
    metrics_path: str | Path,
    task: str,
    seed: int,
    threshold_metric: str = "mcc",
    bootstrap: int = 200,
) -> pd.DataFrame:
    """The numbers a model has to beat: majority class and a GC-content threshold."""
    data = {split: read_task_table(tables[split], split) for split in ("train", "valid", "test")}
    parts = []
    for name, scores in baseline_scores(data).items():
        y_valid, y_test = data["valid"]["label"].to_numpy(), data["test"]["label"].to_numpy()
        if name == "majority":
            # A constant score: predict the majority class whatever the threshold.
            threshold = 0.5
        else:
            threshold = choose_threshold(y_valid, scores["valid"], metric=threshold_metric)
        labels = {"task": task, "model": f"baseline_{name}", "seed": seed}
        parts.append(metric_rows(y_test, scores["test"], threshold, bootstrap, seed, labels))
    table = pd.concat(parts, ignore_index=True)
    write_tsv(table, metrics_path)
    return table


def read_metric_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    tables = []
    for path in paths:
        table = pd.read_csv(path, sep="\t")
        missing = set(METRIC_COLUMNS) - set(table.columns)
        if missing:
            raise InputFormatError(f"{path}: not a metric table (missing {', '.join(sorted(missing))})")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def summarize_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds for each task, model and metric."""
    grouped = table.groupby(["task", "model", "metric"], sort=True)["value"]
    summary = grouped.agg(mean="mean", sd=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, seeds="count")
    return summary.reset_index()


def collect_metrics(
    metric_paths: Sequence[str | Path], table_path: str | Path, summary_path: str | Path
) -> pd.DataFrame:
    table = read_metric_tables(metric_paths).sort_values(["task", "model", "seed", "metric"], kind="stable")
    write_tsv(table, table_path)
    write_tsv(summarize_metrics(table), summary_path)
    return table


def threshold_from_metrics(path: str | Path) -> float:
    """The validation-chosen threshold recorded in a classifier's metric table."""
    table = pd.read_csv(path, sep="\t")
    rows = table.loc[table["metric"] == "threshold", "value"]
    if rows.empty:
        raise InputFormatError(f"{path}: no 'threshold' row; is this an evaluate_classifier metric table?")
    return float(rows.iloc[0])
