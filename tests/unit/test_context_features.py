"""Gene-context features of promoter scan windows: distances, bands, smoothing, local peaks and the design rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genolm.context_features import (
    DIVERGENT_BANDS,
    FAR,
    FEATURES,
    LOGIT_KNOTS,
    START_BANDS,
    cds_context,
    divergent_distance,
    local_maximum,
    smoothed_logit,
    window_context,
)
from genolm.errors import ConfigError
from genolm.genome_scan import tss_positions
from genolm.promoter_context import ContextModel


def _cds(rows):
    return pd.DataFrame(rows, columns=["contig", "start", "end", "strand"])


def test_distance_to_the_next_cds_start_downstream_on_each_strand():
    cds = _cds([("c", 100, 400, "+"), ("c", 600, 900, "-")])  # minus gene starts at its last base, 899
    positions = np.array([50, 100, 250, 450, 899, 950])
    distance, inside = cds_context(cds, positions, "+")
    assert distance.tolist() == [50, 0, FAR, FAR, FAR, FAR]
    assert inside.tolist() == [False, True, True, False, False, False]
    distance, inside = cds_context(cds, positions, "-")
    assert distance.tolist() == [FAR, FAR, FAR, FAR, 0, 51]
    assert inside.tolist() == [False, False, False, False, True, False]
    empty, none_inside = cds_context(cds.iloc[:0], positions, "+")
    assert (empty == FAR).all() and not none_inside.any()


def test_divergent_distance_looks_upstream_for_a_gene_reading_away():
    # a minus gene (its start is its last base, 299) left of plus-strand positions reads away from them
    cds = _cds([("c", 100, 300, "-"), ("c", 700, 900, "+")])
    positions = np.array([250, 299, 350, 650, 700, 800])
    assert divergent_distance(cds, positions, "+").tolist() == [FAR, 0, 51, 351, 401, 501]
    # on the minus strand upstream is rightwards, where a plus gene starting at 700 reads away
    assert divergent_distance(cds, positions, "-").tolist() == [450, 401, 350, 50, 0, FAR]
    assert (divergent_distance(cds.iloc[:0], positions, "+") == FAR).all()


def test_tss_positions_follow_the_strand():
    starts = np.array([0, 10])
    assert tss_positions(starts, "+", 81, 60).tolist() == [60, 70]
    assert tss_positions(starts, "-", 81, 60).tolist() == [20, 30]


def test_smoothing_averages_logits_and_skips_unscored_windows():
    scores = np.array([0.5, 0.5, np.nan, 1 / (1 + np.exp(-2.0)), 0.5])
    smoothed = smoothed_logit(scores, 3)
    assert np.isnan(smoothed[2])
    assert smoothed[3] == pytest.approx(1.0)  # (2 + 0) / 2: the NaN neighbour does not count
    assert smoothed[0] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="odd"):
        smoothed_logit(scores, 4)


def test_local_maximum_of_centred_windows_ignores_unscored_ones():
    values = np.array([1.0, 5.0, np.nan, 2.0, 0.0, 3.0])
    assert local_maximum(values, 3).tolist() == [5.0, 5.0, 5.0, 2.0, 3.0, 3.0]
    assert local_maximum(values, 1)[[0, 1, 3]].tolist() == [1.0, 5.0, 2.0]


def test_design_rows_put_each_feature_in_its_named_column():
    scores = np.full(400, 0.1)
    scores[200] = 0.9  # one spike: the window at the top of its bump
    scores[300] = np.nan
    starts = np.arange(400)
    cds = _cds([("c", 245, 340, "+"), ("c", 20, 120, "-")])  # minus gene's start is base 119
    context = window_context(scores, starts, "+", 41, 30, cds, smooth=3)
    rows = context.design(np.array([200, 300, 0, 185]))
    assert rows.shape == (4, len(FEATURES))
    named = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    spike, unscored, first, near = named
    logit = np.log(0.9 / 0.1)  # the spike's; the background's is -logit
    # window 200 puts its TSS at 230: 15 bp before the plus gene, 111 bp right of the minus gene's start
    assert spike["smoothed_logit"] == pytest.approx(-logit / 3)  # the mean of -logit, logit, -logit
    assert spike["below_local_peak"] == pytest.approx(0.0, abs=1e-12)
    assert spike["fine_below_local_peak"] == pytest.approx(0.0, abs=1e-12)
    assert spike["start_distance_10_20"] == 1.0 and sum(spike[name] for name in START_BANDS) == 1.0
    assert spike["divergent_start_100_300"] == 1.0 and sum(spike[name] for name in DIVERGENT_BANDS) == 1.0
    assert spike["inside_cds"] == 0.0 and spike["inside_opposite_cds"] == 0.0
    knots = [spike[f"logit_hinge_{knot:g}"] for knot in LOGIT_KNOTS]
    assert knots == pytest.approx([max(spike["smoothed_logit"] - knot, 0.0) for knot in LOGIT_KNOTS])
    # an unscored window has no logit features, but keeps its gene context (TSS at 330, inside the plus gene)
    logit_features = ("smoothed_logit", "fine_smoothed_logit", "coarse_smoothed_logit", "below_local_peak")
    assert all(unscored[name] == 0.0 for name in logit_features) and unscored["inside_cds"] == 1.0
    assert not context.scored[300] and context.scored[200]
    # window 0's TSS (30) lies inside the minus gene, 215 bp before the plus gene, with no gene diverging from it
    assert first["inside_opposite_cds"] == 1.0 and first["start_distance_200_250"] == 1.0
    assert sum(first[name] for name in DIVERGENT_BANDS) == 0.0
    # window 185 lies 15 windows from the spike: within the 41-window reach of both bumps, not the 21 of the fine one
    assert near["below_local_peak"] == pytest.approx(-logit - (-logit / 3), rel=1e-6)
    assert near["fine_local_peak"] == pytest.approx((4 * -logit + logit) / 5, rel=1e-6)
    assert near["fine_below_local_peak"] == pytest.approx(0.0, abs=1e-6)
    assert context.design(slice(0, 400)).shape == (400, len(FEATURES))


def test_context_probability_does_not_depend_on_the_chunking(monkeypatch):
    rng = np.random.default_rng(1)
    scores = rng.random(1000)
    scores[10:30] = np.nan
    cds = _cds([("c", 300, 600, "+"), ("c", 700, 900, "-")])
    context = window_context(scores, np.arange(1000), "-", 41, 30, cds, smooth=5)
    model = ContextModel(tuple(rng.normal(size=len(FEATURES))), -1.0, 5)
    whole = model.probability(context)
    monkeypatch.setattr("genolm.promoter_context._CHUNK", 97)
    assert np.array_equal(model.probability(context), whole, equal_nan=True)
    assert np.isnan(whole[10:30]).all() and np.isfinite(np.delete(whole, np.s_[10:30])).all()
