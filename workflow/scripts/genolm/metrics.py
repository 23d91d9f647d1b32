"""Binary classification metrics, curves, threshold choice and bootstrap intervals.

Conventions (all functions):
- ``y_true`` holds 0/1 labels (bool or integer), ``y_score`` finite real scores (larger = more positive).
- A sample is predicted positive when ``score >= threshold``.
- Undefined ratios are given fixed values instead of warnings so metric tables stay comparable across runs:
  precision with no predicted positives -> 0.0; recall/specificity with an empty class -> 0.0; MCC whose
  denominator is 0 (a whole row or column of the confusion matrix empty) -> 0.0; F1 with tp = 0 -> 0.0.
- Rank metrics need both classes: AUROC and AUPRC (average precision) are NaN when a class is missing
  (AUPRC is NaN without positives; with only positives it is 1.0).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from genolm.errors import ConfigError, InputFormatError

log = logging.getLogger(__name__)

ArrayLike = npt.ArrayLike

# Metrics computed from the confusion matrix at one threshold; vectorised over thresholds by _count_metric.
THRESHOLD_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "specificity",
    "mcc",
    "f1",
    "balanced_accuracy",
    "youden",
)
RANK_METRICS: tuple[str, ...] = ("auroc", "auprc")


def _labels(y_true: ArrayLike, what: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InputFormatError(f"{what}: expected a 1-D array of 0/1 labels, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise InputFormatError(f"{what}: labels must be 0 or 1, found {bad.tolist()}")
    return y.astype(np.int64)


def _labels_scores(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if s.shape != y.shape:
        raise InputFormatError(f"y_score has shape {s.shape} but y_true has shape {y.shape}")
    if y.size == 0:
        raise InputFormatError("no samples: y_true and y_score are empty")
    if not np.isfinite(s).all():
        idx = int(np.flatnonzero(~np.isfinite(s))[0])
        raise InputFormatError(f"y_score[{idx}] = {s[idx]!r} is not a finite number")
    return y, s


def confusion(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """Return ``(tn, fp, fn, tp)`` for 0/1 labels and 0/1 predictions."""
    y = _labels(y_true)
    p = _labels(y_pred, "y_pred")
    if p.shape != y.shape:
        raise InputFormatError(f"y_pred has shape {p.shape} but y_true has shape {y.shape}")
    # One bincount over the 4 cells (2*truth + prediction) instead of four masks.
    tn, fp, fn, tp = np.bincount(2 * y + p, minlength=4)
    return int(tn), int(fp), int(fn), int(tp)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den == 0 (the documented convention for undefined ratios)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _count_metric(name: str, tn: ArrayLike, fp: ArrayLike, fn: ArrayLike, tp: ArrayLike) -> np.ndarray:
    """One threshold metric from confusion counts; the counts may be arrays (one entry per threshold)."""
    tn, fp, fn, tp = (np.asarray(c, dtype=np.float64) for c in (tn, fp, fn, tp))
    if name == "accuracy":
        return _safe_div(tp + tn, tp + tn + fp + fn)
    if name == "precision":
        return _safe_div(tp, tp + fp)
    if name == "recall":
        return _safe_div(tp, tp + fn)
    if name == "specificity":
        return _safe_div(tn, tn + fp)
    if name == "f1":
        return _safe_div(2 * tp, 2 * tp + fp + fn)
    if name == "balanced_accuracy":
        return 0.5 * (_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp))
    if name == "youden":
        return _safe_div(tp, tp + fn) + _safe_div(tn, tn + fp) - 1.0
    if name == "mcc":
        # Floats before multiplying: int64 products overflow for genome-sized counts.
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return _safe_div(tp * tn - fp * fn, den)
    raise ConfigError(f"unknown threshold metric {name!r}; choose one of {', '.join(THRESHOLD_METRICS)}")


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores in decreasing order and, for each, (tp, fp) when predicting ``score >= that score``."""
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    # Last index of each run of equal scores: tied samples enter the positive set together.
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    return s_sorted[last], tps, fps


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """AUROC = Mann-Whitney U / (n_pos * n_neg); tied scores count one half. NaN with a single class."""
    y, s = _labels_scores(y_true, y_score)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average (mid) ranks of tied groups, 1-based.
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    mid_rank = first_rank + (counts - 1) / 2.0
    rank_sum = float(mid_rank[inverse][y == 1].sum())
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """AUPRC as average precision: sum over distinct thresholds of (R_k - R_{k-1}) * P_k (no interpolation).

    This is the step-wise definition scikit-learn uses. NaN when there are no positives.
    """
    y, s = _labels_scores(y_true, y_score)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    _, tps, fps = _cumulative_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``, thresholds decreasing.

    The first point is (0, 0) at threshold +inf (nothing predicted positive), then one per distinct score.
    A rate whose class is empty is 0.0 throughout.
    """
    y, s = _labels_scores(y_true, y_score)
    thr, tps, fps = _cumulative_counts(y, s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    tpr = _safe_div(np.r_[0, tps], np.full(tps.size + 1, n_pos))
    fpr = _safe_div(np.r_[0, fps], np.full(fps.size + 1, n_neg))
    return fpr, tpr, np.r_[np.inf, thr]


def pr_curve(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall points ``(precision, recall, thresholds)``: one per distinct score, decreasing.

    Recall is non-decreasing along the arrays. No artificial (recall 0, precision 1) point is added; recall is
    0.0 throughout when there are no positives.
    """
    y, s = _labels_scores(y_true, y_score)
    thr, tps, fps = _cumulative_counts(y, s)
    precision = tps / (tps + fps)  # tps + fps >= 1 at every distinct score
    recall = _safe_div(tps, np.full(tps.size, int(y.sum())))
    return precision, recall, thr


def binary_metrics(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, float]:
    """All metrics at ``threshold`` plus the threshold-free AUROC and AUPRC.

    Keys: accuracy, precision, recall, specificity, mcc, f1, balanced_accuracy, auroc, auprc, tp, fp, tn, fn,
    n, n_pos, threshold. Counts are ints; see the module docstring for undefined cases.
    """
    y, s = _labels_scores(y_true, y_score)
    tn, fp, fn, tp = confusion(y, (s >= threshold).astype(np.int64))
    out: dict[str, float] = {
        name: float(_count_metric(name, tn, fp, fn, tp))
        for name in ("accuracy", "precision", "recall", "specificity", "mcc", "f1", "balanced_accuracy")
    }
    out["auroc"] = auroc(y, s)
    out["auprc"] = average_precision(y, s)
    out.update(tp=tp, fp=fp, tn=tn, fn=fn, n=int(y.size), n_pos=int(y.sum()), threshold=float(threshold))
    return out


def candidate_thresholds(y_score: ArrayLike) -> np.ndarray:
    """Decreasing candidate thresholds: midpoints between consecutive distinct scores, then the lowest score.

    Each candidate gives a different positive set ({score >= u_k} for the k-th highest distinct score u_k);
    midpoints keep the chosen cut away from the validation scores themselves. "Predict nothing" is not a
    candidate.
    """
    s = np.asarray(y_score, dtype=np.float64)
    uniq = np.unique(s)[::-1]
    upper, lower = uniq[:-1], uniq[1:]
    mid = lower + (upper - lower) / 2.0
    # Adjacent floats have no representable midpoint above `lower`; fall back to `upper` (same positive set).
    mid = np.where(mid > lower, mid, upper)
    return np.r_[mid, uniq[-1:]]


def choose_threshold(y_true: ArrayLike, y_score: ArrayLike, metric: str = "mcc") -> float:
    """Threshold maximising ``metric`` over :func:`candidate_thresholds`; use validation scores only.

    Ties are broken towards the highest threshold (fewest calls), so the result is deterministic and
    conservative for genome scans. With a single class in ``y_true`` a warning is logged and the tie-break
    decides.
    """
    if metric not in THRESHOLD_METRICS:
        raise ConfigError(f"cannot choose a threshold for metric {metric!r}; choose one of {THRESHOLD_METRICS}")
    y, s = _labels_scores(y_true, y_score)
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        log.warning("choose_threshold: labels contain a single class; the threshold is arbitrary")
    _, tps, fps = _cumulative_counts(y, s)
    fns = n_pos - tps
    tns = (y.size - n_pos) - fps
    values = _count_metric(metric, tns, fps, fns, tps)
    best = int(np.argmax(values))  # first maximum = highest threshold, since candidates decrease
    return float(candidate_thresholds(s)[best])


def bootstrap_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    threshold: float,
    metric: str,
    n: int = 1000,
    seed: int | np.random.Generator = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval (default 95%) of ``metric`` over ``n`` resamples of the samples.

    ``metric`` is a threshold metric (evaluated at ``threshold``) or "auroc"/"auprc" (threshold ignored).
    Resamples where the metric is undefined (NaN, e.g. a resample with one class for AUROC) are dropped;
    ``(nan, nan)`` if none is left.
    """
    if n < 1:
        raise ConfigError(f"bootstrap_ci: n must be >= 1, got {n}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    y, s = _labels_scores(y_true, y_score)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if metric in THRESHOLD_METRICS:
        # Resampling N items with replacement gives multinomial counts over the 4 confusion cells,
        # so the bootstrap distribution is drawn exactly without materialising the resamples.
        cells = np.bincount(2 * y + (s >= threshold), minlength=4)
        draws = rng.multinomial(y.size, cells / y.size, size=n)
        values = _count_metric(metric, draws[:, 0], draws[:, 1], draws[:, 2], draws[:, 3])
    elif metric in RANK_METRICS:
        fn_rank = auroc if metric == "auroc" else average_precision
        values = np.empty(n)
        for i in range(n):
            idx = rng.integers(0, y.size, size=y.size)
            values[i] = fn_rank(y[idx], s[idx])
    else:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {THRESHOLD_METRICS + RANK_METRICS}")
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
