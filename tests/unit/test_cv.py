"""k-fold cross-validation: fold splits partition the data, tasks expand per fold, metrics pool back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genolm.cv import expand_folds, origin_task, pool_folds, protocol
from genolm.errors import ConfigError
from genolm.published import compare_with_published
from genolm.sources.splits import split_for_fold


def labelled(n_pos: int, n_neg: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"s{i}" for i in range(n_pos + n_neg)], "label": [1] * n_pos + [0] * n_neg})


def test_folds_partition_the_rows_and_each_row_is_tested_once():
    table = labelled(50, 150)
    splits = [split_for_fold(table, np.arange(len(table)), fold, 5, seed=3) for fold in range(1, 6)]
    tested = np.stack([(split == "test").to_numpy() for split in splits])
    assert (tested.sum(axis=0) == 1).all()
    for split in splits:
        test = table[split == "test"]
        assert len(test) == 40
        assert (test["label"] == 1).sum() == 10  # stratified: a fifth of each class
        rest = split[split != "test"]
        # train:valid keeps the 0.8:0.1 ratio of the default fractions, per class
        assert (rest == "valid").sum() == pytest.approx(160 / 9, abs=2)
        assert set(rest) == {"train", "valid"}


def test_fold_split_is_seeded_and_keeps_clusters_whole():
    table = labelled(40, 40)
    clusters = np.repeat(np.arange(20), 4)  # 20 clusters of 4 rows, each cluster one class
    first = split_for_fold(table, clusters, 2, 4, seed=7)
    assert first.equals(split_for_fold(table, clusters, 2, 4, seed=7))
    for cluster in range(20):
        assert first[clusters == cluster].nunique() == 1
    assert not first.equals(split_for_fold(table, clusters, 2, 4, seed=8))


@pytest.mark.parametrize(("fold", "folds"), [(0, 5), (6, 5), (1, 1)])
def test_bad_fold_numbers_fail(fold, folds):
    with pytest.raises(ConfigError, match="folds"):
        split_for_fold(labelled(5, 5), np.arange(10), fold, folds)


def test_expand_folds_makes_one_task_per_fold_in_order():
    tasks = {
        "a": {"source": "x", "split": {"method": "random"}},
        "cv": {"source": "y", "split": {"method": "cluster", "folds": 3}},
        "z": {"source": "x", "split": {}},
    }
    expanded = expand_folds(tasks)
    assert list(expanded) == ["a", "cvfold1", "cvfold2", "cvfold3", "z"]
    assert expanded["cvfold2"]["split"] == {"method": "cluster", "folds": 3, "fold": 2}
    assert expanded["cvfold2"]["cv"] == {"task": "cv", "fold": 2, "folds": 3}
    assert origin_task("cvfold2", expanded["cvfold2"]) == "cv"
    assert origin_task("a", expanded["a"]) == "a"
    assert protocol(expanded["cvfold1"]) == "cluster 3-fold CV"
    assert protocol(expanded["a"]) == "random split"
    assert protocol({"source": "demo", "split": {"method": "cluster"}}) == "demo split"
    assert "fold" not in tasks["cv"]["split"]  # the user's config is not modified


def test_expand_folds_refuses_a_name_clash():
    with pytest.raises(ConfigError, match="clashes"):
        expand_folds({"cv": {"split": {"folds": 2}}, "cvfold2": {"split": {}}})


def fold_metrics() -> pd.DataFrame:
    rows = []
    for fold, (mcc, tp) in enumerate([(0.6, 10), (0.7, 12), (0.8, 11)], start=1):
        rows.append((f"cvfold{fold}", "cnn", 1, "mcc", mcc, mcc - 0.05, mcc + 0.05))
        rows.append((f"cvfold{fold}", "cnn", 1, "tp", float(tp), np.nan, np.nan))
    rows.append(("plain", "cnn", 1, "mcc", 0.5, 0.4, 0.6))
    return pd.DataFrame(rows, columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"])


def test_pool_folds_means_metrics_sums_counts_and_gives_a_fold_interval():
    tasks = {"plain": {"split": {}}, **expand_folds({"cv": {"split": {"folds": 3}}})}
    pooled = pool_folds(fold_metrics(), tasks).set_index(["task", "metric"])
    mcc = pooled.loc[("cv", "mcc")]
    assert mcc["value"] == pytest.approx(0.7)
    half = 1.96 * 0.1 / np.sqrt(3)  # sd over folds is 0.1
    assert (mcc["ci_low"], mcc["ci_high"]) == pytest.approx((0.7 - half, 0.7 + half))
    assert mcc["folds"] == 3
    assert pooled.loc[("cv", "tp"), "value"] == 33
    assert pooled.loc[("plain", "mcc"), "folds"] == 1
    assert pooled.loc[("plain", "mcc"), "value"] == 0.5


def test_pool_folds_refuses_a_missing_fold():
    tasks = expand_folds({"cv": {"split": {"folds": 3}}})
    partial = fold_metrics().query("task != 'cvfold3' and task != 'plain'")
    with pytest.raises(ConfigError, match="2 of 3 folds"):
        pool_folds(partial, tasks)


def test_published_comparison_pools_a_cross_validated_task():
    tasks = expand_folds({"cv": {"source": "cnnprom_ecoli", "split": {"method": "random", "folds": 3}}})
    published = pd.DataFrame(
        [
            {
                "benchmark": "cnnprom_ecoli",
                "method": "CNNProm",
                "metric": "mcc",
                "value": 0.84,
                "protocol": "cv",
                "source": "paper",
                "reference": "ref",
                "doi": "",
                "obtained": "table",
                "note": "",
            }
        ]
    )
    table = compare_with_published(fold_metrics().query("task != 'plain'"), published, tasks)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["task"], row["split"], row["folds"], row["seeds"]) == ("cv", "random 3-fold CV", 3, 1)
    assert row["value"] == pytest.approx(0.7)
    assert row["difference"] == pytest.approx(0.7 - 0.84)
    assert bool(row["outside_ci"])  # 0.84 is above 0.7 + 0.113
