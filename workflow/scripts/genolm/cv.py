"""k-fold cross-validation as ordinary tasks: a task with `split.folds: k` becomes k fold tasks, pooled afterwards.

Every rule then works per fold task unchanged (data, tokens, training, evaluation); only the config expansion here
and the pooling of the fold tasks' metrics into one row per original task know about folds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from genolm.errors import ConfigError

FOLD_MARK = "fold"
COUNTS = frozenset({"n", "tp", "fp", "tn", "fn"})


def fold_task_name(task: str, fold: int) -> str:
    return f"{task}{FOLD_MARK}{fold}"


def expand_folds(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tasks with `split.folds` > 1 replaced, in place in the order, by one task per fold.

    Each fold task is a deep copy with `split.fold` set and `cv: {task, fold, folds}` recording where it comes from.
    A fold task's name that is already a task name fails: the rules could not tell the two apart.
    """
    expanded: dict[str, dict[str, Any]] = {}
    for name, settings in tasks.items():
        folds = int((settings.get("split") or {}).get("folds") or 1)
        if folds <= 1:
            expanded[name] = copy.deepcopy(dict(settings))
            continue
        for fold in range(1, folds + 1):
            fold_name = fold_task_name(name, fold)
            if fold_name in tasks:
                raise ConfigError(f"config: task '{fold_name}' clashes with fold {fold} of cross-validated '{name}'")
            fold_settings = copy.deepcopy(dict(settings))
            fold_settings["split"] = {**fold_settings["split"], "fold": fold}
            fold_settings["cv"] = {"task": name, "fold": fold, "folds": folds}
            expanded[fold_name] = fold_settings
    return expanded


def origin_task(name: str, settings: Mapping[str, Any]) -> str:
    """The task name a user wrote: the cross-validated task for a fold task, else the name itself."""
    cv = settings.get("cv")
    return str(cv["task"]) if cv else name


def protocol(settings: Mapping[str, Any]) -> str:
    """How a task's test figures were obtained, in words for tables: e.g. 'random 5-fold CV' or 'cluster split'."""
    if settings.get("source") == "demo":
        return "demo split"  # by genomic block and IS copy, made by the demo generator
    split = settings.get("split") or {}
    method = str(split.get("method", "cluster"))
    cv = settings.get("cv")
    if cv:
        return f"{method} {cv['folds']}-fold CV"
    return f"{method} split"


def pool_folds(metrics: pd.DataFrame, tasks: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A long metric table (task, model, seed, metric, value, ci_low, ci_high) with the fold tasks pooled.

    Fold rows of one model, seed and metric become one row of the cross-validated task: the mean over folds, and as
    interval mean +/- 1.96 standard errors over folds (the spread that CV measures; each fold's own bootstrap
    interval is narrower than the fold-to-fold variation); counts (n, tp, ...) are summed. `folds` counts them;
    tasks without folds keep their rows with folds = 1. A CV with a missing fold fails rather than pooling fewer
    folds silently.
    """
    cv_of = {name: settings["cv"] for name, settings in tasks.items() if settings.get("cv")}
    plain = metrics[~metrics["task"].isin(cv_of)].assign(folds=1)
    folded = metrics[metrics["task"].isin(cv_of)]
    if folded.empty:
        return plain.reset_index(drop=True)
    folded = folded.assign(
        fold=folded["task"].map(lambda name: cv_of[name]["fold"]),
        task=folded["task"].map(lambda name: cv_of[name]["task"]),
    )
    rows = []
    for (task, model, seed, metric), group in folded.groupby(["task", "model", "seed", "metric"], sort=False):
        expected = next(cv["folds"] for cv in cv_of.values() if cv["task"] == task)
        if group["fold"].nunique() != expected:
            raise ConfigError(
                f"cross-validation of task '{task}', model {model}, seed {seed}: "
                f"{group['fold'].nunique()} of {expected} folds have metric '{metric}'"
            )
        values = group["value"].astype(float)
        if metric in COUNTS:  # confusion counts and test size add up over the folds that partition the data
            mean, half = float(values.sum()), math.nan
        else:
            mean = float(values.mean())
            half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        rows.append(
            {
                "task": task,
                "model": model,
                "seed": seed,
                "metric": metric,
                "value": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "folds": len(values),
            }
        )
    pooled = pd.DataFrame(rows)
    extra = [column for column in metrics.columns if column not in pooled.columns]
    for column in extra:
        pooled[column] = pd.NA
    return pd.concat([plain, pooled[[*metrics.columns, "folds"]]], ignore_index=True)
