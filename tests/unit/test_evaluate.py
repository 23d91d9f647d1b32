from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genolm.errors import InputFormatError
from genolm.evaluate import (
    baseline_scores,
    collect_metrics,
    ensemble_predictions,
    evaluate_baselines,
    evaluate_ensemble,
    evaluate_model_ensemble,
    metric_rows,
    model_ensemble_weights,
    threshold_from_metrics,
)


def test_metric_rows_from_a_known_confusion_matrix():
    # threshold 0.5 gives tp=3, fn=1, tn=4, fp=2
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.55, 0.1, 0.2, 0.3, 0.4])
    rows = metric_rows(y, s, 0.5, bootstrap=0, seed=1, labels={"task": "t", "model": "m", "seed": 1})
    value = dict(zip(rows["metric"], rows["value"], strict=True))
    assert (value["tp"], value["fn"], value["tn"], value["fp"]) == (3, 1, 4, 2)
    assert value["accuracy"] == pytest.approx(0.7)
    assert value["precision"] == pytest.approx(3 / 5)
    assert value["recall"] == pytest.approx(3 / 4)
    assert value["specificity"] == pytest.approx(4 / 6)
    assert value["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert value["mcc"] == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5))
    # AUROC: of the 24 positive-negative pairs, the positive wins 6 + 6 + 6 + 1.5 (0.2 beats 0.1, ties 0.2)
    assert value["auroc"] == pytest.approx(19.5 / 24)
    assert value["threshold"] == 0.5
    assert rows["ci_low"].isna().all()


def test_bootstrap_interval_brackets_the_value():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    rows = metric_rows(y, s, 0.5, bootstrap=300, seed=3, labels={"task": "t", "model": "m", "seed": 1})
    mcc = rows.set_index("metric").loc["mcc"]
    assert mcc["ci_low"] < mcc["value"] < mcc["ci_high"]
    again = metric_rows(y, s, 0.5, bootstrap=300, seed=3, labels={"task": "t", "model": "m", "seed": 1})
    pd.testing.assert_frame_equal(rows, again)


def _split(split, sequences, labels):
    return pd.DataFrame(
        {
            "id": [f"{split}{i}" for i in range(len(labels))],
            "label": labels,
            "split": split,
            "contig": "c",
            "start": 0,
            "end": 4,
            "strand": "+",
            "sequence": sequences,
        }
    )


def test_gc_baseline_orients_itself_on_train_and_majority_is_constant(tmp_path):
    data = {
        "train": _split("train", ["AAAA", "AATA", "GGGC", "AAAT"], [1, 1, 0, 0]),
        "valid": _split("valid", ["ATAA", "GCGC"], [1, 0]),
        "test": _split("test", ["TTAA", "CCGG", "GCGT"], [1, 0, 0]),
    }
    scores = baseline_scores(data)
    # positives are AT-rich here, so the GC score is negated: higher score = lower GC
    assert scores["gc_content"]["test"].tolist() == [-0.0, -1.0, -0.75]
    assert scores["majority"]["test"].tolist() == [1.0, 1.0, 1.0]
    paths = {}
    for split, table in data.items():
        paths[split] = tmp_path / f"{split}.tsv"
        table.to_csv(paths[split], sep="\t", index=False)
    table = evaluate_baselines(paths, tmp_path / "metrics.tsv", task="toy", seed=1, bootstrap=0)
    accuracy = table[table["metric"] == "accuracy"].set_index("model")["value"]
    assert accuracy["baseline_majority"] == pytest.approx(1 / 3)
    assert accuracy["baseline_gc_content"] == pytest.approx(1.0)


def test_collect_and_summarise_over_seeds(tmp_path):
    paths = []
    for seed, mcc in ((1, 0.5), (2, 0.7)):
        path = tmp_path / f"m{seed}.tsv"
        pd.DataFrame(
            [
                {
                    "task": "t",
                    "model": "cnn",
                    "seed": seed,
                    "metric": "mcc",
                    "value": mcc,
                    "ci_low": 0,
                    "ci_high": 1,
                },
                {
                    "task": "t",
                    "model": "cnn",
                    "seed": seed,
                    "metric": "threshold",
                    "value": 0.4,
                    "ci_low": None,
                    "ci_high": None,
                },
            ]
        ).to_csv(path, sep="\t", index=False)
        paths.append(path)
    collect_metrics(paths, tmp_path / "all.tsv", tmp_path / "summary.tsv")
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t").set_index("metric")
    assert summary.loc["mcc", "mean"] == pytest.approx(0.6)
    # tables are written with 6 significant digits so reruns compare equal
    assert summary.loc["mcc", "sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1), rel=1e-5)
    assert summary.loc["mcc", "seeds"] == 2
    assert threshold_from_metrics(paths[0]) == pytest.approx(0.4)


def _predictions(path, scores: dict[str, list[float]], labels: dict[str, list[int]], order=None):
    rows = [
        {"id": f"{split}{i}", "split": split, "label": label, "score": score}
        for split in ("valid", "test")
        for i, (label, score) in enumerate(zip(labels[split], scores[split], strict=True))
    ]
    table = pd.DataFrame(rows)
    if order is not None:
        table = table.iloc[order]
    table.to_csv(path, sep="\t", index=False)
    return path


def test_seed_ensemble_averages_probabilities_and_rechooses_the_threshold(tmp_path):
    labels = {"valid": [1, 1, 0, 0], "test": [1, 1, 1, 0, 0, 0]}
    # Each seed misses a different test positive; their mean ranks every positive above every negative.
    one = {"valid": [0.9, 0.6, 0.4, 0.1], "test": [0.9, 0.8, 0.2, 0.3, 0.1, 0.4]}
    two = {"valid": [0.8, 0.7, 0.3, 0.2], "test": [0.3, 0.9, 0.9, 0.2, 0.4, 0.1]}
    paths = [
        _predictions(tmp_path / "s1.tsv", one, labels),
        _predictions(tmp_path / "s2.tsv", two, labels, order=[9, 0, 5, 1, 2, 3, 4, 6, 7, 8]),  # any row order
    ]
    merged = ensemble_predictions(paths)
    assert merged["split"].tolist() == ["valid"] * 4 + ["test"] * 6
    test = merged[merged["split"] == "test"].set_index("id")
    assert test.loc["test0", "score"] == pytest.approx(0.6) and test.loc["test5", "score"] == pytest.approx(0.25)
    table = evaluate_ensemble(paths, tmp_path / "e.tsv", tmp_path / "m.tsv", "t", "cnn", seed=0, bootstrap=0)
    value = dict(zip(table["metric"], table["value"], strict=True))
    assert set(table["model"]) == {"cnn_ensemble"} and set(table["seed"]) == {0}
    # Averaged validation scores: 0.85, 0.65 | 0.35, 0.15 -> threshold between, which separates the test set.
    assert 0.35 < value["threshold"] <= 0.65
    assert value["mcc"] == pytest.approx(1.0) and value["auroc"] == pytest.approx(1.0)
    single = [metric_rows(np.array(labels["test"]), np.array(s["test"]), 0.5, 0, 1, {}) for s in (one, two)]
    assert all(float(t.loc[t["metric"] == "mcc", "value"].iloc[0]) < 1.0 for t in single)
    written = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert list(written.columns) == ["id", "split", "label", "score"] and len(written) == 10


def test_seed_ensemble_refuses_tables_that_score_different_sequences(tmp_path):
    labels = {"valid": [1, 0], "test": [1, 0]}
    scores = {"valid": [0.9, 0.1], "test": [0.8, 0.2]}
    good = _predictions(tmp_path / "a.tsv", scores, labels)
    flipped = _predictions(tmp_path / "b.tsv", scores, {"valid": [1, 0], "test": [0, 1]})
    with pytest.raises(InputFormatError, match=r"b\.tsv: scores other sequences or labels"):
        ensemble_predictions([good, flipped])
    with pytest.raises(InputFormatError, match="at least two"):
        ensemble_predictions([good])
    pd.concat([pd.read_csv(good, sep="\t")] * 2).to_csv(tmp_path / "dup.tsv", sep="\t", index=False)
    with pytest.raises(InputFormatError, match=r"dup\.tsv: sequence 'valid0' appears twice"):
        ensemble_predictions([good, tmp_path / "dup.tsv"])


def test_model_ensemble_weighs_every_model_once_whatever_its_seeds(tmp_path):
    labels = {"valid": [1, 0], "test": [1, 0]}
    cnn = [_predictions(tmp_path / f"cnn{seed}.tsv", {"valid": [v, 0.1], "test": [v, 0.2]}, labels) for seed, v in
           ((1, 0.9), (2, 0.7), (3, 0.8))]  # fmt: skip
    mlp = [_predictions(tmp_path / "mlp1.tsv", {"valid": [0.4, 0.3], "test": [0.2, 0.6]}, labels)]
    paths, weights = model_ensemble_weights({"cnn": cnn, "kmermlp": mlp})
    assert paths == [*cnn, *mlp] and weights == pytest.approx([1 / 6] * 3 + [1 / 2])
    table = evaluate_model_ensemble({"cnn": cnn, "kmermlp": mlp}, tmp_path / "e.tsv", tmp_path / "m.tsv", "t", "both",
                                    bootstrap=0)  # fmt: skip
    assert set(table["model"]) == {"both_ensemble"} and set(table["seed"]) == {0}
    merged = pd.read_csv(tmp_path / "e.tsv", sep="\t").set_index(["split", "id"])["score"]
    # the CNN's seeds average to 0.8 and 0.2 on test; with the MLP's 0.2 and 0.6 that is 0.5 and 0.4, not the
    # 4-run mean (0.65, 0.35) that would let the three CNN seeds outvote the MLP
    assert merged[("test", "test0")] == pytest.approx(0.5) and merged[("test", "test1")] == pytest.approx(0.4)
    with pytest.raises(InputFormatError, match="at least two models"):
        model_ensemble_weights({"cnn": cnn})
    with pytest.raises(InputFormatError, match="'kmermlp' has no prediction tables"):
        model_ensemble_weights({"cnn": cnn, "kmermlp": []})


def test_equal_weights_give_the_plain_mean_and_a_weight_is_needed_per_table(tmp_path):
    labels = {"valid": [1, 0, 1], "test": [1, 0, 0]}
    runs = [
        _predictions(tmp_path / f"r{i}.tsv", {"valid": list(v), "test": list(v[::-1])}, labels)
        for i, v in enumerate([(0.1, 0.7, 0.3), (0.2, 0.9, 0.6), (0.35, 0.15, 0.05)])
    ]
    plain = ensemble_predictions(runs).set_index(["split", "id"])["score"]
    assert plain[("valid", "valid1")] == pytest.approx((0.7 + 0.9 + 0.15) / 3)
    assert ensemble_predictions(runs, [1 / 3] * 3)["score"].to_numpy() == pytest.approx(plain.to_numpy())
    with pytest.raises(ValueError, match="2 ensemble weights for 3"):
        ensemble_predictions(runs, [0.5, 0.5])
