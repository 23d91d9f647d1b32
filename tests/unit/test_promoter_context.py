"""The promoter context model: gene-context features, the logistic fit, and its held-out evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pysam
import pytest

from genolm.annotations import read_gff3
from genolm.context_features import FEATURES
from genolm.errors import ConfigError, InputFormatError
from genolm.genome_scan import HeldOut, average_precision, truth_points
from genolm.promoter_context import (
    ContextModel,
    apply_context,
    best_f1_threshold,
    fit_logistic,
    matrix_blocks,
    promoter_context,
)
from genolm.scan import Call


def _cds(rows):
    return pd.DataFrame(rows, columns=["contig", "start", "end", "strand"])


def test_logistic_fit_reaches_the_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 3))
    y = rng.random(5000) < 1 / (1 + np.exp(-(x @ np.array([1.5, -2.0, 0.0]) + 0.5)))
    beta = fit_logistic(matrix_blocks(x, y.astype(np.float64)), 3, l2=0.0)
    design = np.column_stack([x, np.ones(len(x))])
    p = 1 / (1 + np.exp(-(design @ beta)))
    assert np.abs(design.T @ (p - y)).max() < 1e-6  # the log-likelihood gradient vanishes
    assert beta[:3] == pytest.approx([1.5, -2.0, 0.0], abs=0.15)
    # summed over chunks of rows, the fit is the same one (up to float rounding)
    chunked = fit_logistic(matrix_blocks(x.astype(np.float32), y.astype(np.float64), chunk=777), 3, l2=0.0)
    assert chunked == pytest.approx(fit_logistic(matrix_blocks(x.astype(np.float32), y.astype(np.float64)), 3, 0.0))
    # an L2 penalty pulls the weights, never the bias, towards zero
    shrunk = fit_logistic(matrix_blocks(x, y.astype(np.float64)), 3, l2=1.0)
    assert np.abs(shrunk[:3]).max() < 0.1 * np.abs(beta[:3]).max()


TASK = {"kind": "promoter", "scan": {"tss_offset": 60, "window_tolerance": 20, "point_tolerance": 20,
                                     "peak_distance": 50}}  # fmt: skip


def test_call_threshold_maximises_point_f1():
    def call(position, score, strand="+", contig="chr"):
        return Call(contig, position, position + 1, strand, score, position, "TSS", window=0)

    truth = [("chr", 100, "+"), ("chr", 500, "+"), ("chr", 900, "-")]
    calls = [
        call(110, 0.9),  # right (10 bp away)
        call(505, 0.8),  # right
        call(300, 0.7),  # wrong
        call(895, 0.6, "+"),  # wrong strand
        call(880, 0.4, "-"),  # right: the third TSS
        call(2000, 0.3),  # wrong
    ]
    # thresholds 0.9: F1 2*(1*1/3)/(4/3) = 0.5; 0.8: 0.8; 0.7: 2*(2/3*2/3)/(4/3) = 0.667; 0.4: 2*(3/5*1)/(8/5) = 0.75
    threshold, f1 = best_f1_threshold(calls, truth, tolerance=20)
    assert threshold == 0.8 and f1 == pytest.approx(0.8)
    assert best_f1_threshold(calls, truth, tolerance=5) == (0.8, pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3)))
    assert best_f1_threshold([], truth, 20) == (1.0, 0.0)


def _toy_scan(tmp_path, length=60_000, n_genes=120, seed=3):
    """A scan whose sequence scores are noise with a small bump at every TSS, and genes whose starts lie
    30-80 bp downstream of each TSS: only the gene context separates TSSs from the noise."""
    rng = np.random.default_rng(seed)
    window, offset = 81, 60
    starts = np.arange(0, length - window + 1)
    tss = np.sort(rng.choice(np.arange(200, length - 1000, 400), n_genes, replace=False))
    genes = _cds([("chr", int(t + rng.integers(30, 80)), int(t + 300), "+") for t in tss])
    logits = rng.normal(size=starts.size)
    for t in tss:
        logits[t - offset] += 1.5
    plus = (1 / (1 + np.exp(-logits))).astype(np.float32)
    minus = np.full(starts.size, 0.01, np.float32)
    np.savez(
        tmp_path / "scores.npz",
        contigs=np.array(["chr"]),
        window=window,
        step=1,
        starts_0=starts,
        plus_0=plus,
        minus_0=minus,
    )
    lines = ["##gff-version 3"] + [
        f"chr\tx\tpromoter\t{t - 39}\t{t + 41}\t.\t+\t.\tID=p{i};tss={t}" for i, t in enumerate(tss)
    ]
    (tmp_path / "truth.gff3").write_text("\n".join(lines) + "\n")
    return genes


def _outputs(folder, prefix=""):
    names = {
        "model": "m.json",
        "scores": "c.npz",
        "bedgraph": "c.bedgraph.gz",
        "evaluation": "e.tsv",
        "bed": "calls.bed.gz",
        "gff": "calls.gff3.gz",
    }
    return {key: folder / f"{prefix}{name}" for key, name in names.items()}


def test_gene_context_lifts_held_out_auprc_and_every_output_is_written(tmp_path):
    genes = _toy_scan(tmp_path)
    task = TASK
    outputs = _outputs(tmp_path)
    heldout = HeldOut((("chr", 40_000, 60_000),))
    table = promoter_context(tmp_path / "scores.npz", tmp_path / "truth.gff3", genes, task, heldout, outputs)
    metrics = dict(zip(table["metric"], table["value"], strict=True))
    assert metrics["window_auprc_context"] > 2 * metrics["window_auprc_sequence"]
    # 59,920 window starts; a window counts when its TSS position (plus: start + 60, minus: start + 20) is held out
    assert metrics["windows"] == (59_920 - 39_940) + (59_920 - 39_980)
    # the toy's gene starts lie 30-80 bp downstream of its TSSs: those bands outweigh a window far from any gene
    weights = dict(zip(FEATURES, ContextModel.load(outputs["model"]).weights, strict=True))
    assert min(weights[f"start_distance_{band}"] for band in ("40_50", "50_60", "60_80")) > max(
        weights["start_distance_1000_1500"], weights["start_distance_3000_up"]
    )
    model = ContextModel.load(outputs["model"])
    # TSS calls at the threshold chosen outside the held-out stretch, judged inside it
    assert model.threshold == metrics["call_threshold"] and 0.0 < model.threshold < 1.0
    truth = truth_points(read_gff3(tmp_path / "truth.gff3"))
    assert metrics["point_n_truth"] == sum(40_000 <= position < 60_000 for _, position, _ in truth) > 10
    # chance precision is about 50 TSSs x 41 bp / 40 kb of both strands = 5 %
    assert metrics["point_recall"] > 0.5 and metrics["point_precision"] > 0.2
    calls = read_gff3(outputs["gff"])
    assert len(calls) > 0 and set(calls["type"]) == {"TSS"} and (calls["end"] - calls["start"] == 1).all()
    assert (calls["score"].astype(float) >= model.threshold).all()
    with pysam.TabixFile(str(outputs["bed"])) as bed:
        assert len(list(bed.fetch("chr"))) == len(calls)
    held = calls[calls["start"] >= 40_000]
    assert len(held) == metrics["point_n_calls"]
    assert json.loads(outputs["model"].read_text())["heldout"] == "chr:40001-60000"
    with np.load(outputs["scores"]) as context, np.load(tmp_path / "scores.npz") as scan:
        assert context["plus_0"].shape == scan["plus_0"].shape and context["contigs"].tolist() == ["chr"]
        assert np.isfinite(context["plus_0"]).all()
    # the held-out figure only ever saw windows the fit did not use: refitting changes nothing there
    again = promoter_context(
        tmp_path / "scores.npz",
        tmp_path / "truth.gff3",
        genes,
        task,
        heldout,
        {key: tmp_path / f"again_{path.name}" for key, path in outputs.items()},
    )
    assert again["value"].tolist() == table["value"].tolist()
    assert model.weights == ContextModel.load(tmp_path / "again_m.json").weights
    assert average_precision(np.array([0.9, 0.1]), np.array([True, False])) == 1.0


def test_context_model_refuses_a_scan_without_a_held_out_stretch(tmp_path):
    genes = _toy_scan(tmp_path)
    task = TASK
    outputs = _outputs(tmp_path)
    with pytest.raises(ConfigError, match="split by region"):
        promoter_context(tmp_path / "scores.npz", tmp_path / "truth.gff3", genes, task, HeldOut(), outputs)
    assert not any(path.exists() for path in outputs.values())


def test_a_fitted_model_rescored_on_another_genome_equals_its_own_scores_and_tracks(tmp_path):
    genes = _toy_scan(tmp_path)
    task = TASK
    fitted = _outputs(tmp_path)
    promoter_context(
        tmp_path / "scores.npz", tmp_path / "truth.gff3", genes, task, HeldOut((("chr", 40_000, 60_000),)), fitted
    )
    applied = _outputs(tmp_path, "applied_")
    apply_context(tmp_path / "scores.npz", fitted["model"], genes, task, applied)
    # the same genome and model: the same calls, at the threshold the fit chose
    fitted_calls, applied_calls = read_gff3(fitted["gff"]), read_gff3(applied["gff"])
    assert len(fitted_calls) > 0
    pd.testing.assert_frame_equal(fitted_calls, applied_calls)
    with np.load(fitted["scores"]) as own, np.load(applied["scores"]) as other:
        assert own["contigs"].tolist() == other["contigs"].tolist()
        for key in ("starts_0", "plus_0", "minus_0", "window", "step"):
            assert np.array_equal(own[key], other[key], equal_nan=key in ("plus_0", "minus_0")), key
    with pysam.TabixFile(str(applied["bedgraph"])) as track:
        rows = [line.split("\t") for line in track.fetch("chr", 0, 1000)]
    assert [int(row[1]) for row in rows[:3]] == [40, 50, 60]  # 10 bp bins of window centres, from 81 // 2
    assert all(0.0 <= float(row[3]) <= 1.0 for row in rows)
    # a model file without a call threshold, or from another feature set, is refused, not misread
    record = json.loads(fitted["model"].read_text())
    fitted["model"].write_text(json.dumps({key: value for key, value in record.items() if key != "threshold"}))
    with pytest.raises(InputFormatError, match="without a call threshold"):
        apply_context(tmp_path / "scores.npz", fitted["model"], genes, task, applied)
    record["features"] = ["something_else"]
    fitted["model"].write_text(json.dumps(record))
    with pytest.raises(InputFormatError, match="features"):
        apply_context(tmp_path / "scores.npz", fitted["model"], genes, task, applied)
