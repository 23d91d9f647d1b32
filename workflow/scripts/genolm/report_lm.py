"""Report parts of the `lm` block: LM quality against baselines, and variant scores by variant class."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Score -> sign that makes "larger = more disruptive": a lower likelihood or probability, a larger distance.
DISRUPTION_SIGN = {"llr": -1.0, "l1": 1.0, "cosine": 1.0, "delta_prob": -1.0}


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney U statistic over n1 * n0)."""
    positive, negative = positive[~np.isnan(positive)], negative[~np.isnan(negative)]
    if not positive.size or not negative.size:
        return float("nan")
    ranks = pd.Series(np.concatenate([positive, negative])).rank().to_numpy()
    u = ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2
    return float(u / (positive.size * negative.size))


def class_comparison(table: pd.DataFrame, lm: str) -> list[dict[str, Any]]:
    """Per score: medians for box and background SNVs and the AUROC of separating them (box = positive)."""
    scored = table[table["status"] == "scored"]
    box, background = scored[scored["class"] == "box"], scored[scored["class"] == "background"]
    rows = []
    for score, sign in DISRUPTION_SIGN.items():
        if scored[score].isna().all():
            continue
        rows.append({
            "lm": lm, "score": score, "n_box": len(box), "n_background": len(background),
            "median_box": float(box[score].median()), "median_background": float(background[score].median()),
            "auroc_box": auroc(sign * box[score].to_numpy(float), sign * background[score].to_numpy(float)),
        })  # fmt: skip
    return rows


def _quality_part(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    from genolm.report import table_html

    tables = [pd.read_csv(entry["table"], sep="\t") for entry in entries]
    table = pd.concat(tables, ignore_index=True)
    return [
        "<h3>Language-model quality</h3>",
        '<p class="note">Cross-entropy (nats per token), perplexity and accuracy of each LM on whole genomes: '
        "next-token prediction for the AWD-LSTM, masked-token prediction (span masking, fixed seed) for the "
        "transformer. seen: whether the LM pretrained on the genome (demo_heldout is the demo generator with "
        "another seed). stride_loss = ln(4^stride): with stride s the next k-mer repeats k - s known bases and adds s "
        "new ones, so a model that knows the tokenization but nothing about DNA scores this; uniform_loss = "
        "ln(4^k): a model that knows nothing; unigram_loss/unigram_accuracy: the evaluated tokens' own k-mer "
        "frequencies. A loss above the stride baseline means the LM has not yet learned the k-mer overlap.</p>",
        table_html(table),
    ]


def _variants_part(vcf: str, entries: Sequence[Mapping[str, Any]], figures: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from genolm.report import figure_html, table_html
    from genolm.variant_effects import read_scores_tsv

    tables = {entry["lm"]: read_scores_tsv(entry["table"]) for entry in entries}
    parts = [f"<h3>Variant scores: {html.escape(vcf)}</h3>"]
    summary = pd.DataFrame(
        [{"lm": lm, "alleles": len(t), "scored": int((t["status"] == "scored").sum()),
          "median_llr": float(t["llr"].median()), "median_cosine": float(t["cosine"].median())}
         for lm, t in tables.items()]
    )  # fmt: skip
    parts.append(table_html(summary))
    labelled = {lm: t for lm, t in tables.items() if {"box", "background"} <= set(t["class"])}
    if not labelled:
        return parts
    rows = [row for lm, t in labelled.items() for row in class_comparison(t, lm)]
    parts.append(
        '<p class="note">SNVs inside planted promoter -10/-35 boxes (box) against SNVs at random positions outside '
        "promoters (background). llr: log P(ALT window) - log P(REF window) (next-token LMs; masked LMs: masked "
        "marginal); l1/cosine: embedding distances; delta_prob: change of the promoter classifier's best window "
        "probability. auroc_box: how well the score (negated for llr and delta_prob, so that larger = more "
        "disruptive) ranks box SNVs above background ones; 0.5 = no signal.</p>"
    )
    parts.append(table_html(pd.DataFrame(rows)))
    scores = [s for s in ("llr", "delta_prob") if any(t[s].notna().any() for t in labelled.values())]
    figure, axes = plt.subplots(len(scores), 1, figsize=(max(5.0, 1.6 * len(labelled) + 2), 3.0 * len(scores)),
                                squeeze=False)  # fmt: skip
    for axis, score in zip(axes[:, 0], scores, strict=True):
        data, ticks = [], []
        for lm, t in labelled.items():
            for label in ("box", "background"):
                values = t.loc[(t["class"] == label) & (t["status"] == "scored"), score].dropna().to_numpy()
                data.append(values if values.size else np.array([np.nan]))
                ticks.append(f"{lm}\n{label}")
        axis.boxplot(data, showfliers=False)
        axis.set_xticks(range(1, len(ticks) + 1), ticks, fontsize=6, rotation=30, ha="right")
        axis.axhline(0.0, color="grey", lw=0.5)
        axis.set_ylabel(score)
    axes[0, 0].set_title(f"{vcf}: variant scores by class")
    name = f"lm_variants_{vcf}"
    parts.append(figure_html(figure, name, figures, f"{vcf} variant scores, box vs background"))
    return parts


def lm_parts(entries: Sequence[Mapping[str, Any]], figures: Path) -> list[str]:
    """HTML fragments: the LM-quality table, then per VCF a score summary and the box/background comparison."""
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    quality = [entry for entry in entries if entry["kind"] == "quality"]
    if quality:
        parts += _quality_part(quality)
    by_vcf: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        if entry["kind"] == "variants":
            by_vcf.setdefault(str(entry["vcf"]), []).append(entry)
    for vcf, group in by_vcf.items():
        parts += _variants_part(vcf, group, figures)
    return parts
