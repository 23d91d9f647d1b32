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
from genolm.evaluate import REPORTED_METRICS
from genolm.metrics import pr_curve, roc_curve
from genolm.provenance import git_commit, package_versions, sha256_file

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


def _figure_html(figure: plt.Figure, name: str, figures_dir: Path, alt: str) -> str:
    """Save a figure as PNG under figures_dir and inline it, so the page stands alone."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    data = buffer.getvalue()
    (figures_dir / f"{name}.png").write_bytes(data)
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _table_html(table: pd.DataFrame, baseline_column: str | None = None) -> str:
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


def _read_tsv(path: str | Path | None) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t") if path else pd.DataFrame()


def _timings(paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for path in paths:
        table = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "step": f"{Path(path).parent.name}/{Path(path).stem}",
                "seconds": round(float(table["s"].iloc[0]), 1),
                "max_rss_mb": table["max_rss"].iloc[0] if "max_rss" in table else "",
            }
        )
    return pd.DataFrame(rows)


def _section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(parts)


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
) -> None:
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    metrics = pd.read_csv(metrics_path, sep="\t")
    tasks = list(dict.fromkeys(run["task"] for run in runs))
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
        parts = [_table_html(summary)]
        if "test_with_train_near_duplicate" in summary:
            parts.append(
                '<p class="note">Real datasets are split by MinHash similarity clusters (or IS families); the last '
                "columns count valid/test sequences that still have a near-duplicate in train, from an independent "
                "all-pairs check (0 = no leakage).</p>"
            )
        if overlap_path is not None:
            overlap = _read_tsv(overlap_path)
            parts.append("<h3>Overlap between datasets</h3>")
            parts.append(_table_html(overlap) if len(overlap) else "<p>Only one task: nothing to compare.</p>")
        sections.append(_section("Labelled data", *parts))

    metric_parts = []
    for task in tasks:
        metric_parts.append(f"<h3>{html.escape(task)}</h3>")
        metric_parts.append(_table_html(metric_overview(metrics, task), baseline_column="model"))
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
        "The last column names the rival that beats every one of them, where one does.</p>" + _table_html(comparison),
    )
    sections.append(_section("Classifier metrics (test split)", *metric_parts))

    if published_path is not None:
        published = _read_tsv(published_path)
        if len(published):
            shown = published[
                ["benchmark", "task", "split", "metric", "published_value", "published_method", "published_protocol",
                 "model", "value", "ci_low", "ci_high", "difference", "outside_ci"]
            ]  # fmt: skip
            body = _table_html(shown.round(3))
        else:
            body = "<p>No task of this run is a benchmark with published figures.</p>"
        sections.append(
            _section(
                "Beside the published figures",
                '<p class="note">For each benchmark and metric: the best published figure '
                "(resources/published_metrics.tsv: source, protocol and how each was obtained), our best model (mean "
                "over seeds), the first seed's bootstrap 95% interval and whether the published value lies outside it. "
                "Published protocols differ from ours where the split column says cluster: those tasks keep "
                "near-duplicates out of the test split.</p>",
                body,
            )
        )

    curve_parts = []
    for task in tasks:
        task_runs = [run for run in runs if run["task"] == task]
        first_seed = min(run["seed"] for run in task_runs)
        chosen = [run for run in task_runs if run["seed"] == first_seed]
        predictions = {run["model"]: pd.read_csv(run["predictions"], sep="\t") for run in chosen}
        histories = {run["model"]: pd.read_csv(run["history"], sep="\t") for run in chosen}
        curve_parts.append(f"<h3>{html.escape(task)} (seed {first_seed})</h3>")
        curve_parts.append(_figure_html(roc_figure(task, predictions), f"roc_{task}", figures, f"ROC curves {task}"))
        curve_parts.append(_figure_html(pr_figure(task, predictions), f"pr_{task}", figures, f"PR curves {task}"))
        curve_parts.append(
            _figure_html(calibration_figure(task, predictions), f"calibration_{task}", figures, f"calibration {task}")
        )
        curve_parts.append("<p>Test confusion counts at each model's validation-chosen threshold:</p>")
        curve_parts.append(_table_html(confusion_table(metrics, task), baseline_column="model"))
        curve_parts.append(
            _figure_html(training_figure(task, histories), f"training_{task}", figures, f"training curves {task}")
        )
    sections.append(_section("ROC, precision-recall, calibration and training curves", *curve_parts))

    if language_models:
        sections.append(
            _section(
                "Language models",
                '<p class="note">Genome pretraining and task fine-tuning of the language models the classifiers '
                "start from. A next-k-mer model that learnt nothing beyond the k-mer overlap scores ln(4^stride) nats; "
                "the gain column is how far below that it got.</p>",
                _table_html(language_model_table(language_models)),
                _figure_html(language_model_figure(language_models), "language_models", figures, "language models"),
            )
        )

    scan_parts = []
    for scan in scans:
        label = f"{scan['genome']} / {scan['task']} / {scan['model']}"
        scan_parts.append(f"<h3>{html.escape(label)}</h3>")
        summary = _read_tsv(scan["summary"])
        scan_parts.append(_table_html(summary))
        if not summary.empty and int(summary["calls"].sum()) == 0:
            scan_parts.append('<p class="note">This scan made no calls above the validation threshold.</p>')
        if scan.get("evaluation"):
            scan_parts.append("<p>Against the known elements:</p>" + _table_html(_read_tsv(scan["evaluation"])))
        truth = None
        if scan.get("truth"):
            truth = read_gff3(scan["truth"], types={TRUTH_TYPES[scan["kind"]]})
        scores = load_scan_scores(scan["scores"])
        figure, _ = track_figure(scan, scores, truth, region)
        name = f"track_{scan['genome']}_{scan['task']}_{scan['model']}"
        scan_parts.append(_figure_html(figure, name, figures, f"score track {label}"))
    if scan_parts:
        sections.append(_section("Genome scans (both strands)", *scan_parts))

    provenance_parts = [
        f"<p>genolm {html.escape(genolm.__version__)}, git commit <code>{html.escape(git_commit())}</code>.</p>",
        _table_html(pd.DataFrame(sorted(package_versions().items()), columns=["package", "version"])),
    ]
    if data_files:
        checksums = pd.DataFrame([(str(path), sha256_file(path)) for path in data_files], columns=["file", "sha256"])
        provenance_parts.append("<p>Data checksums:</p>" + _table_html(checksums))
    if timing_paths:
        provenance_parts.append("<p>Runtime of the expensive steps:</p>" + _table_html(_timings(timing_paths)))
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
