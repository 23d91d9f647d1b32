"""One self-contained HTML page: metric tables, ROC and training curves, genome score tracks, provenance."""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

import genolm
from genolm.annotations import TRUTH_TYPES, read_gff3
from genolm.atomic import write_text_atomic
from genolm.benchmarks_doc import benchmarks_markdown, regenerate_command
from genolm.cv import origin_task, pool_folds, protocol
from genolm.evaluate import REPORTED_METRICS
from genolm.metrics import pr_curve, roc_curve
from genolm.provenance import git_commit, machine_description, package_versions, sha256_file

log = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.45}
h1{border-bottom:2px solid #345}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#eef}
td:first-child,th:first-child{text-align:left}tr.baseline td{color:#777;font-style:italic}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.note{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.8em}
"""


def figure_html(figure: plt.Figure, name: str, figures_dir: Path, alt: str) -> str:
    """Save a figure as PNG under figures_dir and inline it, so the page stands alone."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    data = buffer.getvalue()
    (figures_dir / f"{name}.png").write_bytes(data)
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def table_html(table: pd.DataFrame, baseline_column: str | None = None) -> str:
    if table.empty:
        return '<p class="note">(no rows)</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for _, row in table.iterrows():
        css = ' class="baseline"' if baseline_column and str(row[baseline_column]).startswith("baseline") else ""
        cells = "".join(f"<td>{html.escape(_format_cell(v))}</td>" for v in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _format_cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def metric_overview(metrics: pd.DataFrame, task: str) -> pd.DataFrame:
    """Wide table for one task: a row per model, a column per metric, mean +/- sd over seeds and the first
    seed's bootstrap 95% interval."""
    rows = []
    subset = metrics[metrics["task"] == task]
    for model, group in subset.groupby("model", sort=False):
        row: dict[str, str] = {"model": str(model)}
        seeds = sorted(group["seed"].unique())
        for metric in REPORTED_METRICS:
            values = group.loc[group["metric"] == metric].sort_values("seed")
            if values.empty:
                continue
            mean = values["value"].mean()
            cell = f"{mean:.3f}"
            if len(seeds) > 1:
                cell += f" ± {values['value'].std(ddof=1):.3f}"
            first = values.iloc[0]
            if not np.isnan(first["ci_low"]):
                cell += f" [{first['ci_low']:.3f}, {first['ci_high']:.3f}]"
            row[metric] = cell
        row["seeds"] = str(len(seeds))
        rows.append(row)
    table = pd.DataFrame(rows)
    baseline = table["model"].str.startswith("baseline")
    return pd.concat([table[~baseline], table[baseline]], ignore_index=True)


def roc_figure(task: str, curves: Mapping[str, pd.DataFrame]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    for model, predictions in curves.items():
        test = predictions[predictions["split"] == "test"]
        fpr, tpr, _ = roc_curve(test["label"].to_numpy(), test["score"].to_numpy())
        axis.plot(fpr, tpr, label=model, lw=1.5)
    axis.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{task}: test ROC")
    axis.legend(fontsize=8, loc="lower right")
    return figure


def pr_figure(task: str, curves: Mapping[str, pd.DataFrame]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    prevalence = 0.0
    for model, predictions in curves.items():
        test = predictions[predictions["split"] == "test"]
        precision, recall, _ = pr_curve(test["label"].to_numpy(), test["score"].to_numpy())
        axis.plot(recall, precision, label=model, lw=1.5)
        prevalence = float(test["label"].mean())
    axis.axhline(prevalence, ls=":", color="grey", lw=1, label="chance (prevalence)")
    axis.set(xlabel="recall", ylabel="precision", title=f"{task}: test precision-recall", ylim=(0, 1.02))
    axis.legend(fontsize=8, loc="lower left")
    return figure


def calibration_table(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data: per equal-width score bin, the mean predicted probability, the observed fraction
    of positives and the count (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        if inside.any():
            rows.append(
                {"bin": b, "predicted": float(scores[inside].mean()), "observed": float(labels[inside].mean()),
                 "n": int(inside.sum())}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["bin", "predicted", "observed", "n"])


def calibration_figure(task: str, curves: Mapping[str, pd.DataFrame]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    for model, predictions in curves.items():
        test = predictions[predictions["split"] == "test"]
        table = calibration_table(test["label"].to_numpy(), test["score"].to_numpy())
        axis.plot(table["predicted"], table["observed"], marker="o", ms=3, lw=1.2, label=model)
    axis.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="perfectly calibrated")
    axis.set(xlabel="predicted probability", ylabel="observed fraction positive", title=f"{task}: calibration (test)")
    axis.legend(fontsize=8, loc="upper left")
    return figure


def confusion_table(metrics: pd.DataFrame, task: str) -> pd.DataFrame:
    """Test confusion counts at each model's validation-chosen threshold (first seed)."""
    subset = metrics[(metrics["task"] == task) & metrics["metric"].isin(["threshold", "tp", "fp", "tn", "fn"])]
    first = subset[subset["seed"] == subset.groupby("model")["seed"].transform("min")]
    table = first.pivot_table(index="model", columns="metric", values="value", sort=False).reset_index()
    columns = ["model", "threshold", "tp", "fp", "tn", "fn"]
    table = table.reindex(columns=columns)
    for column in ("tp", "fp", "tn", "fn"):
        table[column] = table[column].astype("Int64")
    table["threshold"] = table["threshold"].round(4)
    return table


def training_figure(task: str, histories: Mapping[str, pd.DataFrame]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for index, (model, history) in enumerate(histories.items()):
        color = f"C{index}"
        axis.plot(history["epoch"], history["train_loss"], color=color, ls="--", lw=1.2, label=f"{model} train")
        axis.plot(history["epoch"], history["valid_loss"], color=color, lw=1.6, label=f"{model} valid")
    axis.set(xlabel="epoch", ylabel="loss (BCE)", title=f"{task}: training curves")
    axis.legend(fontsize=7, ncol=2)
    return figure


def model_comparison(metrics: pd.DataFrame, pretrained: Sequence[str], metric: str = "mcc") -> pd.DataFrame:
    """Every model on every task in one table (mean over seeds of `metric`), the best model per task, and, where
    a model other than the pretrained ones (ULMFiT) beats all of them, which one and by how much."""
    chosen = metrics[metrics["metric"] == metric]
    wide = chosen.groupby(["task", "model"], sort=False)["value"].mean().unstack("model")
    models = [m for m in dict.fromkeys(chosen["model"]) if not str(m).startswith("baseline")]
    rows = []
    for task, values in wide.iterrows():
        row: dict[str, Any] = {"task": task}
        row.update({model: round(float(values[model]), 3) for model in wide.columns if not pd.isna(values[model])})
        scored = values[models].dropna()
        row["best"] = str(scored.idxmax()) if len(scored) else ""
        ulmfit = scored[[m for m in pretrained if m in scored.index]]
        rivals = scored.drop(ulmfit.index)
        if len(ulmfit) and len(rivals) and rivals.max() > ulmfit.max():
            row["rival beats ULMFiT"] = f"{rivals.idxmax()} by {rivals.max() - ulmfit.max():.3f}"
        else:
            row["rival beats ULMFiT"] = "no" if len(ulmfit) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def language_model_table(language_models: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Best validation epoch of every language model against what a model that learnt nothing scores: a
    next-k-mer LM with stride s only has s new bases to guess, ln(4^s) nats; a masked LM has a whole k-mer."""
    rows = []
    for entry in language_models:
        history = pd.read_csv(entry["history"], sep="\t")
        best = history.loc[history["valid_loss"].idxmin()]
        row = {
            "language model": entry["label"],
            "objective": entry["objective"],
            "epochs": len(history),
            "best epoch": int(best["epoch"]),
            "valid loss (nats)": round(float(best["valid_loss"]), 4),
            "valid accuracy": round(float(best["valid_accuracy"]), 4),
        }
        if entry["objective"] == "next":
            baseline = float(np.log(4.0 ** int(entry["stride"])))
            row["no-learning loss ln(4^stride)"] = round(baseline, 4)
            row["gain (nats)"] = round(baseline - float(best["valid_loss"]), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def language_model_figure(language_models: Sequence[Mapping[str, Any]]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for index, entry in enumerate(language_models):
        history = pd.read_csv(entry["history"], sep="\t")
        color = f"C{index % 10}"
        axis.plot(history["epoch"], history["valid_loss"], marker="o", ms=3, color=color, label=entry["label"])
    axis.set(xlabel="epoch", ylabel="validation loss (nats)", title="language models")
    axis.legend(fontsize=7)
    return figure


def load_scan_scores(path: str | Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        contigs = [str(name) for name in data["contigs"]]
        return {
            "window": int(data["window"]),
            "threshold": float(data["threshold"]),
            "contigs": {
                name: (data[f"starts_{i}"], data[f"plus_{i}"], data[f"minus_{i}"]) for i, name in enumerate(contigs)
            },
        }


def track_figure(
    scan: Mapping[str, Any], scores: Mapping[str, Any], truth: pd.DataFrame | None, region: Mapping[str, Any]
) -> tuple[plt.Figure, str]:
    """Score tracks of both strands over a region, with the known elements of the task drawn beneath."""
    contig = region.get("track_contig") or next(iter(scores["contigs"]))
    if contig not in scores["contigs"]:
        contig = next(iter(scores["contigs"]))
    starts, plus, minus = scores["contigs"][contig]
    low = int(region.get("track_start", 0))
    high = low + int(region.get("track_length", 40_000))
    centres = starts + scores["window"] / 2
    keep = (centres >= low) & (centres < high)
    figure, (axis_plus, axis_minus, axis_truth) = plt.subplots(
        3, 1, figsize=(10, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]}
    )
    for axis, values, strand, color in ((axis_plus, plus, "+", "C0"), (axis_minus, minus, "-", "C3")):
        axis.plot(centres[keep], values[keep], color=color, lw=0.7)
        axis.axhline(scores["threshold"], color="grey", ls=":", lw=0.8)
        axis.set_ylim(-0.02, 1.02)
        axis.set_ylabel(f"{strand} strand")
    axis_truth.set_yticks([])
    axis_truth.set_ylabel("known", rotation=0, ha="right", va="center")
    if truth is not None:
        known = truth[(truth["contig"] == contig) & (truth["end"] > low) & (truth["start"] < high)]
        for feature in known.itertuples():
            y = 0.7 if feature.strand == "+" else 0.3
            axis_truth.plot([feature.start, feature.end], [y, y], lw=5, color="C0" if feature.strand == "+" else "C3")
    axis_truth.set_ylim(0, 1)
    axis_truth.set_xlim(low, high)
    axis_truth.set_xlabel(f"{contig} position (bp)")
    title = f"{scan['genome']} / {scan['task']} / {scan['model']}: window scores, {contig}:{low:,}-{high:,}"
    axis_plus.set_title(title, fontsize=10)
    return figure, contig


def embedding_figure(task: str, projections: Mapping[str, pd.DataFrame]) -> plt.Figure:
    """One t-SNE panel per model: the test sequences' classifier embeddings, coloured by class."""
    n = max(len(projections), 1)
    figure, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.3), squeeze=False)
    for ax, (model, table) in zip(axes[0], projections.items(), strict=False):
        for label, colour, name in ((0, "#8a9bb0", "negative"), (1, "#c0392b", "positive")):
            chosen = table[table["label"] == label]
            ax.scatter(chosen["x"], chosen["y"], s=5, alpha=0.6, color=colour, label=f"{name} ({len(chosen)})")
        ax.set_title(f"{task}: {model}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="best", markerscale=2)
    figure.tight_layout()
    return figure


def binned_max(positions: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Maximum of ``values`` in each bin of ``edges`` by (sorted) ``positions``; NaN where no scored window falls."""
    n_bins = len(edges) - 1
    out = np.full(n_bins, np.nan)
    if positions.size == 0:
        return out
    index = np.clip(np.searchsorted(edges, positions, side="right") - 1, 0, n_bins - 1)
    firsts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    out[index[firsts]] = np.fmax.reduceat(np.asarray(values, dtype=np.float64), firsts)
    return out


def genome_overview_figure(
    scan: Mapping[str, Any],
    scores: Mapping[str, Any],
    truth: pd.DataFrame | None,
    bins: int = 500,
    max_contigs: int = 8,
) -> plt.Figure:
    """Every replicon end to end: the best window score of each strand per bin (plus strand up, minus strand down),
    the validation threshold, and the known elements as ticks on the axis. The longest ``max_contigs`` are shown."""
    window = scores["window"]
    scanned = [(name, arrays) for name, arrays in scores["contigs"].items() if arrays[0].size]
    scanned = sorted(scanned, key=lambda item: -int(item[1][0][-1]))[:max_contigs]
    figure, axes = plt.subplots(max(len(scanned), 1), 1, figsize=(10, 0.8 + 1.4 * max(len(scanned), 1)), squeeze=False)
    for axis, (contig, (starts, plus, minus)) in zip(axes[:, 0], scanned, strict=False):
        length = int(starts[-1]) + window  # the last window is aligned to the contig end
        edges = np.linspace(0, length, min(bins, starts.size) + 1)
        centres = starts + window / 2
        for values, sign, colour in ((plus, 1, "C0"), (minus, -1, "C3")):
            best = binned_max(centres, values, edges)
            axis.stairs(sign * np.nan_to_num(best), edges, fill=True, color=colour, lw=0)
            axis.axhline(sign * scores["threshold"], color="grey", ls=":", lw=0.8)
        if truth is not None:
            known = truth[truth["contig"] == contig]
            middles = (known["start"] + known["end"]) / 2
            axis.vlines(middles, -0.12, 0.12, color="black", lw=0.8)
        axis.axhline(0, color="black", lw=0.5)
        axis.set_xlim(0, length)
        axis.set_ylim(-1.05, 1.05)
        axis.set_yticks([-1, 0, 1], ["1 (-)", "0", "1 (+)"], fontsize=7)
        axis.set_ylabel(f"{contig}\n{length:,} bp", fontsize=8)
        axis.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("position (bp)")
    title = (
        f"{scan['genome']} / {scan['task']} / {scan['model']}: best window score per bin "
        "(+ strand up, - strand down; ticks: known elements)"
    )
    axes[0, 0].set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def _read_tsv(path: str | Path | None) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t") if path else pd.DataFrame()


def _benchmark_step(path: str | Path) -> str:
    """'rule/job' from a Snakemake benchmark path benchmarks/<rule>/<job>.tsv (job names may hold slashes)."""
    parts = Path(path).with_suffix("").parts
    start = len(parts) - 1 - parts[::-1].index("benchmarks") if "benchmarks" in parts else len(parts) - 3
    return "/".join(parts[start + 1 :])


def benchmark_files(directory: str | Path) -> list[Path]:
    """Every Snakemake benchmark file under `directory`, sorted: the timings of all jobs run in this directory."""
    root = Path(directory)
    return sorted(root.rglob("*.tsv")) if root.is_dir() else []


def _timings(paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for path in dict.fromkeys(str(path) for path in paths):
        table = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "step": _benchmark_step(path),
                "seconds": round(float(table["s"].iloc[0]), 1),
                "max_rss_mb": table["max_rss"].iloc[0] if "max_rss" in table else "",
            }
        )
    return pd.DataFrame(rows)


def _section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(parts)


def _amr_parts(entries: Sequence[Mapping[str, Any]], figures: Path) -> list[str]:
    """Per genome scan: replicon summary, AMR genes with their nearest IS call, the nearest calls, two figures."""
    from genolm.amr import call_table_for_report, distance_figure, replicon_map_figure

    parts = [
        '<p class="note">AMR genes are annotated CDS matched by resources/amr_gene_patterns.tsv (AMRFinderPlus '
        "classes; regulators, broad efflux pumps, biocide/metal and mobile-element genes excluded). Distances are bp "
        "between call and gene (0 = touching or overlapping), the shorter way round a circular replicon. is_side: "
        "where the IS lies from the gene, along the gene's strand; gene_side and orientation need a stranded IS call "
        "(genolm's IS scans are strand-agnostic, so they read unknown). Coordinates are 0-based half-open.</p>"
    ]
    for entry in entries:
        label = f"{entry['genome']} / {entry['task']} / {entry['model']}"
        near = int(entry["near_bp"])
        by_call, by_gene = _read_tsv(entry["calls"]), _read_tsv(entry["genes"])
        replicons = _read_tsv(entry["replicons"])
        parts.append(f"<h3>{html.escape(label)}</h3>")
        if entry.get("synthetic"):
            parts.append(
                '<p class="note">Demo genome: its AMR genes are synthetic labels on random ORFs (the CDS nearest each '
                "copy of one IS family, and every 40th CDS), a check of the plumbing, not biology.</p>"
            )
        parts.append(table_html(replicons))
        gene_columns = ["contig", "start", "end", "strand", "gene", "product", "amr_class", "nearest_call",
                        "distance_bp", "is_side", "orientation", "calls_near"]  # fmt: skip
        parts.append("<p>AMR genes and their nearest IS call (at most 50):</p>")
        parts.append(table_html(by_gene[gene_columns].head(50) if len(by_gene) else by_gene))
        parts.append(f"<p>IS calls within {near:,} bp of an AMR gene, nearest first (at most 25):</p>")
        parts.append(table_html(call_table_for_report(by_call, near) if len(by_call) else by_call))
        slug = f"{entry['genome']}_{entry['task']}_{entry['model']}"
        parts.append(
            figure_html(distance_figure(by_call, by_gene, label, near), f"amr_distance_{slug}", figures, label)
        )
        map_figure = replicon_map_figure(by_call, by_gene, replicons, label)
        parts.append(figure_html(map_figure, f"amr_map_{slug}", figures, f"IS calls and AMR genes {label}"))
    return parts


def _reads_parts(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One table: per read set, task and model, how many reads (or pairs) carry a signal."""
    table = pd.concat([_read_tsv(entry["summary"]) for entry in entries], ignore_index=True)
    columns = ["sample", "task", "model", "layout", "units", "units_scored", "units_positive", "fraction_positive",
               "reads_short", "reads_too_short", "window", "threshold", "max_score"]  # fmt: skip
    return [
        '<p class="note">Units are reads (single-end) or read pairs; a pair is positive when either mate is. A read '
        "longer than the model window is scored as windows of that length on both strands (its best window counts); "
        "a shorter one (reads_short) is scored whole, an input shorter than any the model saw in training; reads "
        "under readscan.min_length are not scored. The threshold is the classifier's validation-chosen one. "
        "Positive reads are in results/reads/{sample}/{task}/{model}/positives.fasta.gz.</p>",
        table_html(table[[column for column in columns if column in table]]),
    ]


HOMOLOGY_METRICS = ("n_calls", "n_truth", "tp", "recall", "precision", "fdr")
KNOWN_IS_METRICS = ("n_truth", "tp", "recall", "fdr")


def homology_comparison(entry: Mapping[str, Any]) -> pd.DataFrame:
    """One genome's IS calls against its known elements: the homology caller, then every IS model scan."""
    evaluations = [("homology (ISfinder k-mers)", entry["evaluation"])]
    evaluations += [(f"{scan['task']} / {scan['model']}", scan["evaluation"]) for scan in entry["scans"]]
    rows = []
    for caller, path in evaluations:
        values = _read_tsv(path).set_index("metric")["value"]
        row = {"caller": caller, **{metric: float(values[metric]) for metric in HOMOLOGY_METRICS}}
        # against the annotation plus the known IS it lacks (genolm.known_is), where the genome names them
        row |= {
            f"{metric} +known": float(values[f"{metric}_with_known_is"])
            for metric in KNOWN_IS_METRICS
            if f"{metric}_with_known_is" in values
        }
        rows.append({**row, "criterion": values["criterion"]})
    return pd.DataFrame(rows).round(3)


def _homology_parts(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per genome: the homology caller's summary, and its evaluation beside the IS model scans'."""
    parts = [
        '<p class="note">The homology caller (genolm.is_homology, no BLAST) calls IS elements where a genome shares '
        "canonical k-mers with an IS library (ISfinder; the demo genome: its own IS families), chained along one "
        "element and strand; calls are in results/homology/{genome}/calls.{bed,gff3}.gz with the element, family, "
        "group, strand and an identity estimate. Recall, precision and FDR use the model scans' criterion. Known "
        "elements are the genome's annotation: real IS copies it does not list count as false calls. Where the "
        "genome names a table of such copies (genomes.&lt;name&gt;.known_is), the '+known' columns count them as "
        "known too.</p>"
    ]
    for entry in entries:
        parts.append(f"<h3>{html.escape(entry['genome'])}</h3>")
        parts.append(table_html(_read_tsv(entry["summary"])))
        if entry.get("evaluation"):
            parts.append("<p>Against the known IS elements:</p>" + table_html(homology_comparison(entry)))
    return parts


def _reuse_sections(
    interpret: Sequence[Mapping[str, Any]],
    language: Sequence[Mapping[str, Any]],
    exports: Sequence[Mapping[str, Any]],
    figures: Path,
) -> list[str]:
    """Interpretation, language-model quality and variant effects, and exported models: each area's module draws
    its own parts (imported here: they use this module's figure and table helpers)."""
    from genolm.report_export import export_parts
    from genolm.report_interpret import interpret_parts
    from genolm.report_lm import lm_parts

    areas = (
        ("Interpretation: in-silico mutagenesis and motifs", interpret, interpret_parts),
        ("Language models: held-out quality and zero-shot variant effects", language, lm_parts),
        ("Exported models and embeddings", exports, export_parts),
    )
    return [_section(title, *parts(entries, figures)) for title, entries, parts in areas if entries]


def build_report(
    metrics_path: str | Path,
    html_path: str | Path,
    figures_dir: str | Path,
    runs: Sequence[Mapping[str, Any]],
    scans: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    region: Mapping[str, Any],
    language_models: Sequence[Mapping[str, Any]] = (),
    published_path: str | Path | None = None,
    dataset_summary_paths: Sequence[str | Path] = (),
    overlap_path: str | Path | None = None,
    timing_paths: Sequence[str | Path] = (),
    data_files: Sequence[str | Path] = (),
    amr: Sequence[Mapping[str, Any]] = (),
    reads: Sequence[Mapping[str, Any]] = (),
    homology: Sequence[Mapping[str, Any]] = (),
    embeddings: Sequence[Mapping[str, Any]] = (),
    interpret: Sequence[Mapping[str, Any]] = (),
    language: Sequence[Mapping[str, Any]] = (),
    exports: Sequence[Mapping[str, Any]] = (),
    markdown_paths: Sequence[str | Path] = (),
    command: str = "",
    benchmark_dir: str | Path | None = None,
    configfiles: Sequence[str] = (),
) -> None:
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    task_settings = config.get("tasks", {})
    # Fold tasks of a cross-validation are pooled into their task for every table; curves show the first fold.
    metrics = pool_folds(pd.read_csv(metrics_path, sep="\t"), task_settings)
    run_tasks = list(dict.fromkeys(run["task"] for run in runs))
    tasks = list(dict.fromkeys(origin_task(task, task_settings.get(task, {})) for task in run_tasks))
    curve_tasks = [task for task in run_tasks if task_settings.get(task, {}).get("cv", {}).get("fold", 1) == 1]
    sections = []

    sections.append(
        _section(
            "What was run",
            f"<p>Tasks: {html.escape(', '.join(tasks))}. Models: "
            f"{html.escape(', '.join(dict.fromkeys(run['model'] for run in runs)))}. Seeds: "
            f"{html.escape(', '.join(str(s) for s in dict.fromkeys(run['seed'] for run in runs)))}.</p>"
            '<p class="note">Metrics are on the held-out test split; each decision threshold was chosen on the '
            "validation split only. Intervals are bootstrap 95% intervals of the first seed; ± is the standard "
            "deviation over seeds. Rows in grey are trivial baselines (majority class; GC-content threshold): a model "
            "that does not beat them has learnt nothing useful.</p>",
        )
    )
    if dataset_summary_paths:
        summary = pd.concat([_read_tsv(path) for path in dataset_summary_paths], ignore_index=True)
        parts = [table_html(summary)]
        if "test_with_train_near_duplicate" in summary:
            parts.append(
                '<p class="note">Real datasets are split by MinHash similarity clusters (or IS families); the last '
                "columns count valid/test sequences that still have a near-duplicate in train, from an independent "
                "all-pairs check (0 = no leakage).</p>"
            )
        if overlap_path is not None:
            overlap = _read_tsv(overlap_path)
            parts.append("<h3>Overlap between datasets</h3>")
            parts.append(table_html(overlap) if len(overlap) else "<p>Only one task: nothing to compare.</p>")
        sections.append(_section("Labelled data", *parts))

    metric_parts = []
    protocols = {origin_task(name, settings): protocol(settings) for name, settings in task_settings.items()}
    for task in tasks:
        metric_parts.append(f"<h3>{html.escape(task)} ({html.escape(protocols.get(task, 'split'))})</h3>")
        metric_parts.append(table_html(metric_overview(metrics, task), baseline_column="model"))
    pretrained = [
        name
        for name, settings in config.get("models", {}).items()
        if settings.get("arch") == "awd_lstm" and settings.get("pretrain")
    ]
    comparison = model_comparison(metrics, pretrained)
    metric_parts.insert(
        0,
        "<h3>Every model on every task (test MCC, mean over seeds)</h3>"
        f'<p class="note">ULMFiT models (pretrained AWD-LSTM): {html.escape(", ".join(pretrained) or "none")}. '
        "The last column names the rival that beats every one of them, where one does.</p>" + table_html(comparison),
    )
    sections.append(_section("Classifier metrics (test split)", *metric_parts))

    if published_path is not None:
        published = _read_tsv(published_path)
        if len(published):
            shown = published[
                ["benchmark", "task", "split", "metric", "published_value", "published_method", "published_protocol",
                 "model", "value", "ci_low", "ci_high", "difference", "outside_ci", "seeds", "folds"]
            ]  # fmt: skip
            body = table_html(shown.round(3))
        else:
            body = "<p>No task of this run is a benchmark with published figures.</p>"
        sections.append(
            _section(
                "Beside the published figures",
                '<p class="note">For each benchmark and metric: the best published figure '
                "(resources/published_metrics.tsv: source, protocol and how each was obtained), our best model (mean "
                "over seeds), the first seed's bootstrap 95% interval (for a k-fold cross-validation: ± 1.96 standard "
                "errors over folds) and whether the published value lies outside it. The split column says how ours "
                "was measured, published_protocol how theirs was: a cluster split keeps near-duplicates out of the "
                "test split, which the published random splits did not.</p>",
                body,
            )
        )

    curve_parts = []
    for task in curve_tasks:
        task_runs = [run for run in runs if run["task"] == task]
        first_seed = min(run["seed"] for run in task_runs)
        chosen = [run for run in task_runs if run["seed"] == first_seed]
        predictions = {run["model"]: pd.read_csv(run["predictions"], sep="\t") for run in chosen}
        histories = {run["model"]: pd.read_csv(run["history"], sep="\t") for run in chosen}
        curve_parts.append(f"<h3>{html.escape(task)} (seed {first_seed})</h3>")
        curve_parts.append(figure_html(roc_figure(task, predictions), f"roc_{task}", figures, f"ROC curves {task}"))
        curve_parts.append(figure_html(pr_figure(task, predictions), f"pr_{task}", figures, f"PR curves {task}"))
        curve_parts.append(
            figure_html(calibration_figure(task, predictions), f"calibration_{task}", figures, f"calibration {task}")
        )
        curve_parts.append("<p>Test confusion counts at each model's validation-chosen threshold:</p>")
        curve_parts.append(table_html(confusion_table(metrics, task), baseline_column="model"))
        curve_parts.append(
            figure_html(training_figure(task, histories), f"training_{task}", figures, f"training curves {task}")
        )
    sections.append(_section("ROC, precision-recall, calibration and training curves", *curve_parts))

    if embeddings:
        embedding_parts = [
            '<p class="note">t-SNE of what each classifier\'s output layer reads, for test sequences of its first '
            "seed (at most report.embedding_points per panel, drawn at random). Separated colours mean the model "
            "has learnt features that tell the classes apart; t-SNE distances between clusters mean little.</p>"
        ]
        for task in dict.fromkeys(entry["task"] for entry in embeddings):
            projections = {
                entry["model"]: pd.read_csv(entry["projection"], sep="\t")
                for entry in embeddings
                if entry["task"] == task
            }
            embedding_parts.append(
                figure_html(embedding_figure(task, projections), f"embeddings_{task}", figures, f"t-SNE {task}")
            )
        sections.append(_section("Classifier embeddings (t-SNE)", *embedding_parts))

    if language_models:
        sections.append(
            _section(
                "Language models",
                '<p class="note">Genome pretraining and task fine-tuning of the language models the classifiers '
                "start from. A next-k-mer model that learnt nothing beyond the k-mer overlap scores ln(4^stride) nats; "
                "the gain column is how far below that it got.</p>",
                table_html(language_model_table(language_models)),
                figure_html(language_model_figure(language_models), "language_models", figures, "language models"),
            )
        )

    scan_parts = []
    for scan in scans:
        label = f"{scan['genome']} / {scan['task']} / {scan['model']}"
        scan_parts.append(f"<h3>{html.escape(label)}</h3>")
        summary = _read_tsv(scan["summary"])
        scan_parts.append(table_html(summary))
        if not summary.empty and int(summary["calls"].sum()) == 0:
            scan_parts.append('<p class="note">This scan made no calls above the validation threshold.</p>')
        if scan.get("evaluation"):
            scan_parts.append("<p>Against the known elements:</p>" + table_html(_read_tsv(scan["evaluation"])))
        if scan.get("context"):
            scan_parts.append(
                "<p>In gene context (rule promoter_context: the window score, its shape around the window, the "
                "distance to the next CDS start on its strand and CDS overlap, fitted outside the held-out stretch, "
                "judged on it; its weights are in context/model.json):</p>" + table_html(_read_tsv(scan["context"]))
            )
        truth = None
        if scan.get("truth"):
            truth = read_gff3(scan["truth"], types={TRUTH_TYPES[scan["kind"]]})
        scores = load_scan_scores(scan["scores"])
        figure, _ = track_figure(scan, scores, truth, region)
        name = f"track_{scan['genome']}_{scan['task']}_{scan['model']}"
        scan_parts.append(figure_html(figure, name, figures, f"score track {label}"))
        overview = genome_overview_figure(scan, scores, truth)
        scan_parts.append(figure_html(overview, f"overview_{name[6:]}", figures, f"genome overview {label}"))
    if scan_parts:
        sections.append(_section("Genome scans (both strands)", *scan_parts))
    if amr:
        sections.append(_section("IS calls near antimicrobial-resistance genes", *_amr_parts(amr, figures)))
    if reads:
        sections.append(_section("Sequencing reads", *_reads_parts(reads)))
    if homology:
        sections.append(_section("Homology IS caller beside the model scans", *_homology_parts(homology)))
    sections += _reuse_sections(interpret, language, exports, figures)

    provenance_parts = [
        f"<p>genolm {html.escape(genolm.__version__)}, git commit <code>{html.escape(git_commit())}</code>.</p>",
        table_html(pd.DataFrame(sorted(package_versions().items()), columns=["package", "version"])),
    ]
    if data_files:
        checksums = pd.DataFrame([(str(path), sha256_file(path)) for path in data_files], columns=["file", "sha256"])
        provenance_parts.append("<p>Data checksums:</p>" + table_html(checksums))
    timing_paths = [*timing_paths, *(benchmark_files(benchmark_dir) if benchmark_dir else [])]
    timings = _timings(timing_paths) if timing_paths else pd.DataFrame(columns=["step", "seconds", "max_rss_mb"])
    timings = timings.drop_duplicates("step")
    if timing_paths:
        per_rule = timings.assign(rule=timings["step"].str.split("/").str[0]).groupby("rule", sort=False)
        provenance_parts.append(
            "<p>Runtime per stage (Snakemake benchmark files, summed over jobs):</p>"
            + table_html(per_rule["seconds"].agg(jobs="count", seconds="sum").reset_index())
            + "<p>Runtime of every timed job:</p>"
            + table_html(timings)
        )
    machine = machine_description()
    provenance_parts.append(
        "<p>Machine: " + html.escape(", ".join(f"{key} {value}" for key, value in machine.items())) + ".</p>"
    )
    if command:
        provenance_parts.append(f"<p>Command:</p><pre>{html.escape(command)}</pre>")
    provenance_parts.append(
        "<p>Configuration:</p><pre>" + html.escape(yaml.safe_dump(dict(config), sort_keys=False)) + "</pre>"
    )
    sections.append(_section("Provenance", *provenance_parts))

    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>genolm report</title>"
        f"<style>{STYLE}</style></head><body><h1>genolm report</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    target = Path(html_path)
    write_text_atomic(target, page)
    log.info("report written to %s", target)
    if markdown_paths:
        from datetime import date

        from genolm.published import read_comparison

        comparison = read_comparison(published_path) if published_path is not None else pd.DataFrame()
        markdown = benchmarks_markdown(
            pd.read_csv(metrics_path, sep="\t"),
            task_settings,
            comparison,
            timings,
            machine=machine,
            command=command,
            regenerate=regenerate_command(configfiles, str(config.get("mirror") or "")),
            commit=git_commit(),
            date=date.today().isoformat(),
            versions=package_versions(),
            seeds=sorted({int(run["seed"]) for run in runs}),
        )
        for path in markdown_paths:
            write_text_atomic(Path(path), markdown)
            log.info("benchmark tables written to %s", path)
