"""genolm.metrics against hand-computed values and brute-force definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genolm.errors import ConfigError, InputFormatError
from genolm.metrics import (
    auroc,
    average_precision,
    binary_metrics,
    bootstrap_ci,
    candidate_thresholds,
    choose_threshold,
    confusion,
    pr_curve,
    roc_curve,
)


def _brute_auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative, ties counting 1/2."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _brute_average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """sum_k (R_k - R_{k-1}) P_k over distinct thresholds, from the highest down."""
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp = int(np.sum(pred & (y == 1)))
        precision = tp / int(pred.sum())
        recall = tp / int(y.sum())
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def _tp3_fp1_tn4_fn2() -> tuple[np.ndarray, np.ndarray]:
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.6, 0.3, 0.2, 0.1, 0.0])
    return y, s


def test_confusion_counts_each_cell():
    assert confusion([0, 0, 1, 1, 1, 0], [0, 1, 0, 1, 1, 0]) == (2, 1, 1, 2)
    assert confusion(np.array([True, False]), np.array([True, True])) == (0, 1, 0, 1)


def test_binary_metrics_hand_computed():
    y, s = _tp3_fp1_tn4_fn2()
    m = binary_metrics(y, s, threshold=0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 4, 2)
    assert m["mcc"] == pytest.approx((3 * 4 - 1 * 2) / math.sqrt(4 * 5 * 5 * 6), abs=1e-15)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 5)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert m["balanced_accuracy"] == pytest.approx((3 / 5 + 4 / 5) / 2)
    assert m["n"] == 10 and m["n_pos"] == 5 and m["threshold"] == 0.5


def test_threshold_is_inclusive():
    m = binary_metrics([1, 0], [0.5, 0.49], threshold=0.5)
    assert (m["tp"], m["fp"]) == (1, 0)


def test_auroc_and_average_precision_textbook_example():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    assert auroc(y, s) == pytest.approx(0.75)
    # thresholds 0.8, 0.4, 0.35: P = 1, 1/2, 2/3 ; R = 1/2, 1/2, 1
    assert average_precision(y, s) == pytest.approx(0.5 * 1 + 0.0 * 0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auroc_with_ties_equals_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=150)
    s = np.round(rng.normal(size=150) + 0.7 * y, 1)  # rounding makes many ties, across classes too
    assert len(np.unique(s)) < 100
    assert auroc(y, s) == pytest.approx(_brute_auroc(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_average_precision_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=120)
    s = np.round(rng.random(120) + 0.3 * y, 2)
    assert average_precision(y, s) == pytest.approx(_brute_average_precision(y, s), abs=1e-12)


def test_single_class_gives_nan_rank_metrics_without_crashing():
    m = binary_metrics([0, 0, 0], [0.1, 0.6, 0.9], threshold=0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["auprc"])
    assert m["recall"] == 0.0 and m["mcc"] == 0.0 and m["precision"] == 0.0
    m = binary_metrics([1, 1], [0.2, 0.9], threshold=0.5)
    assert math.isnan(m["auroc"]) and m["auprc"] == 1.0 and m["specificity"] == 0.0


def test_no_predicted_positives_gives_zero_precision_and_mcc():
    m = binary_metrics([1, 0, 1, 0], [0.1, 0.2, 0.3, 0.4], threshold=0.9)
    assert (m["tp"], m["fp"]) == (0, 0)
    assert m["precision"] == 0.0 and m["mcc"] == 0.0 and m["f1"] == 0.0 and m["recall"] == 0.0
    assert m["auroc"] == pytest.approx(0.25)


def test_roc_curve_points_and_area():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=80)
    s = np.round(rng.random(80) + 0.4 * y, 1)
    fpr, tpr, thr = roc_curve(y, s)
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thr) < 0) and np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # Trapezoids between ROC points = Mann-Whitney with ties counted 1/2.
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auroc(y, s), abs=1e-12)


def test_pr_curve_matches_counts_and_average_precision():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    precision, recall, thr = pr_curve(y, s)
    np.testing.assert_allclose(thr, [0.8, 0.4, 0.35, 0.1])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0, 1.0])
    assert np.sum(np.diff(np.r_[0.0, recall]) * precision) == pytest.approx(average_precision(y, s))


def test_candidate_thresholds_are_midpoints_then_minimum():
    np.testing.assert_allclose(candidate_thresholds([0.2, 0.8, 0.4, 0.8]), [0.6, 0.3, 0.2])


def test_choose_threshold_separable_returns_midpoint_between_classes():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.9]
    assert choose_threshold(y, s, "mcc") == pytest.approx(0.5)
    assert choose_threshold(y, s, "f1") == pytest.approx(0.5)


def test_choose_threshold_tie_goes_to_highest_threshold():
    # Candidates 3.5 and 1.5 both give MCC 2/sqrt(12); the higher one (fewer calls) wins, every time.
    y = [0, 1, 0, 1]
    s = [1.0, 2.0, 3.0, 4.0]
    for name in ("mcc", "f1", "accuracy"):
        assert choose_threshold(y, s, name) == choose_threshold(y, s, name)
    assert binary_metrics(y, s, 3.5)["mcc"] == pytest.approx(binary_metrics(y, s, 1.5)["mcc"])
    assert choose_threshold(y, s, "mcc") == 3.5


@pytest.mark.parametrize("metric", ["mcc", "f1", "accuracy", "youden", "balanced_accuracy"])
def test_choose_threshold_maximises_metric_over_all_candidates(metric):
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, size=200)
    s = np.round(rng.normal(size=200) + y, 2)
    best = choose_threshold(y, s, metric)

    def value(t: float) -> float:
        m = binary_metrics(y, s, t)
        if metric == "youden":
            return m["recall"] + m["specificity"] - 1
        return m[metric]

    brute = max(value(t) for t in candidate_thresholds(s))
    assert value(best) == pytest.approx(brute, abs=1e-12)


def test_choose_threshold_unknown_metric():
    with pytest.raises(ConfigError, match="auroc"):
        choose_threshold([0, 1], [0.1, 0.9], "auroc")


def _resampled_interval(y, s, threshold, metric, n, seed):
    """Explicit bootstrap: resample indices, recompute the metric."""
    rng = np.random.default_rng(seed)
    vals = [binary_metrics(y[i], s[i], threshold)[metric] for i in rng.integers(0, len(y), size=(n, len(y)))]
    return np.quantile(vals, [0.025, 0.975])


def test_bootstrap_ci_threshold_metric_matches_explicit_resampling():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=300)
    s = rng.random(300) + 0.5 * y
    low, high = bootstrap_ci(y, s, 0.75, "accuracy", n=2000, seed=7)
    point = binary_metrics(y, s, 0.75)["accuracy"]
    assert low < point < high
    ref_low, ref_high = _resampled_interval(y, s, 0.75, "accuracy", 1000, 8)
    assert low == pytest.approx(ref_low, abs=0.015)
    assert high == pytest.approx(ref_high, abs=0.015)
    assert bootstrap_ci(y, s, 0.75, "accuracy", n=2000, seed=7) == (low, high)


def test_bootstrap_ci_auroc_is_seeded_and_brackets_estimate():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=100)
    s = rng.random(100) + 0.5 * y
    ci = bootstrap_ci(y, s, 0.5, "auroc", n=200, seed=1)
    assert ci == bootstrap_ci(y, s, 0.5, "auroc", n=200, seed=np.random.default_rng(1))
    assert ci[0] < auroc(y, s) < ci[1]
    assert ci[0] >= 0.0 and ci[1] <= 1.0


def test_bootstrap_ci_all_nan_and_bad_metric():
    low, high = bootstrap_ci([0, 0, 0], [0.1, 0.2, 0.3], 0.5, "auroc", n=20, seed=0)
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ConfigError):
        bootstrap_ci([0, 1], [0.1, 0.9], 0.5, "r2", n=10, seed=0)


def test_invalid_inputs_raise_input_format_error():
    with pytest.raises(InputFormatError, match="0 or 1"):
        binary_metrics([0, 2], [0.1, 0.2], 0.5)
    with pytest.raises(InputFormatError, match="finite"):
        binary_metrics([0, 1], [0.1, float("nan")], 0.5)
    with pytest.raises(InputFormatError, match="shape"):
        auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(InputFormatError, match="empty"):
        average_precision([], [])
