"""Published figures as data, and the table that sets genolm's test metrics beside them.

``resources/published_metrics.tsv`` holds one row per published number (benchmark, method, metric, value, protocol,
where it was read, citation, DOI, how it was obtained). A task joins to a benchmark through its ``source``, so the
comparison needs no name mapping: task ``ecoli`` with ``source: cnnprom_ecoli`` meets every ``cnnprom_ecoli`` row.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from genolm.atomic import atomic_writer, write_text_atomic
from genolm.cv import origin_task, pool_folds, protocol
from genolm.errors import ConfigError, InputFormatError
from genolm.evaluate import ENSEMBLE_SUFFIX, METRIC_COLUMNS, REPORTED_METRICS, read_metric_tables

log = logging.getLogger(__name__)

PUBLISHED_COLUMNS = (
    "benchmark",
    "method",
    "metric",
    "value",
    "protocol",
    "source",
    "reference",
    "doi",
    "obtained",
    "note",
)
# A figure is identified by these; two rows with the same key would make "best published" ambiguous.
PUBLISHED_KEY = ("benchmark", "method", "metric", "protocol")
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "published_metrics.schema.yaml"

COMPARISON_COLUMNS = (
    "benchmark",
    "task",
    "split",
    "metric",
    "published_value",
    "published_method",
    "published_source",
    "published_protocol",
    "published_obtained",
    "model",
    "value",
    "ci_low",
    "ci_high",
    "difference",
    "outside_ci",
    "seeds",
    "folds",
)


@cache
def _validator(schema_path: Path) -> jsonschema.protocols.Validator:
    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _number(text: str) -> float | str:
    """The cell as a finite float, or the text unchanged so that the schema reports it as not a number."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _row_problems(validator: jsonschema.protocols.Validator, record: Mapping[str, Any]) -> list[str]:
    problems = []
    for error in sorted(validator.iter_errors(record), key=lambda e: [str(p) for p in e.absolute_path]):
        column = next((str(p) for p in error.absolute_path), None)
        problems.append(f"column '{column}': {error.message}" if column else error.message)
    return problems


def read_published_metrics(path: str | Path, schema: str | Path = SCHEMA_PATH) -> pd.DataFrame:
    """Read and validate the published-metrics TSV; one row per figure, ``value`` as float.

    Every row is checked against ``schema`` (JSON Schema 2020-12), then (benchmark, method, metric, protocol) must be
    unique. All problems are collected and raised together as one InputFormatError whose lines each name the file,
    the row (1-based, header excluded) and its line in the file.
    """
    path = Path(path)
    validator = _validator(Path(schema).resolve())
    with open(path, encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not lines:
        raise InputFormatError(f"{path}: empty file; expected a header with {', '.join(PUBLISHED_COLUMNS)}")
    header = [name.strip() for name in lines[0]]
    unknown = [name for name in header if name not in PUBLISHED_COLUMNS]
    missing = [name for name in PUBLISHED_COLUMNS if name not in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if unknown or missing or duplicated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        if duplicated:
            parts.append(f"repeated column(s) {', '.join(duplicated)}")
        raise InputFormatError(
            f"{path}: header (line 1): {'; '.join(parts)}; expected the columns {', '.join(PUBLISHED_COLUMNS)}"
        )

    problems: list[str] = []
    records: list[dict[str, Any]] = []
    first_seen: dict[tuple[str, ...], int] = {}
    row = 0
    for line_no, fields in enumerate(lines[1:], start=2):
        if not any(field.strip() for field in fields):
            continue  # blank line
        row += 1
        where = f"{path}: row {row} (line {line_no})"
        if len(fields) != len(header):
            problems.append(f"{where}: {len(fields)} tab-separated fields, the header has {len(header)}")
            continue
        record: dict[str, Any] = dict(zip(header, fields, strict=True))
        record["value"] = _number(record["value"].strip())
        row_problems = _row_problems(validator, record)
        problems.extend(f"{where}: {problem}" for problem in row_problems)
        key = tuple(str(record[name]) for name in PUBLISHED_KEY)
        if key in first_seen:
            problems.append(
                f"{where}: duplicate of row {first_seen[key]}: same "
                + ", ".join(f"{name} '{value}'" for name, value in zip(PUBLISHED_KEY, key, strict=True))
            )
        else:
            first_seen[key] = row
        if not row_problems:
            records.append(record)
    if problems:
        raise InputFormatError("\n".join(problems))
    table = pd.DataFrame(records, columns=list(PUBLISHED_COLUMNS))
    table["value"] = table["value"].astype(float)
    log.info("%s: %d published figures for %d benchmarks", path, len(table), table["benchmark"].nunique())
    return table


# Task sources whose published figures go by other benchmark names. Genomic Benchmarks' human_nontata_promoters set
# is CNNProm's human non-TATA set re-mapped to GRCh38 (its docs say so), so both papers' figures describe it.
SOURCE_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "genomic_benchmarks_human_nontata": ("genomic_benchmarks_human_nontata_promoters", "cnnprom_human_nontata"),
}


def benchmarks_of(source: str) -> tuple[str, ...]:
    """The benchmark names in the published table that a task source's figures are filed under."""
    return SOURCE_BENCHMARKS.get(source, (source,))


def _task_source(name: str, settings: Mapping[str, Any]) -> tuple[str, str]:
    source = settings.get("source") if isinstance(settings, Mapping) else None
    if not source:
        raise ConfigError(f"tasks.{name}: no 'source'; cannot join the task to published figures")
    return str(source), protocol(settings)


def _user_tasks(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Tasks as the user wrote them: the fold tasks of a cross-validation collapse into their task."""
    users: dict[str, Mapping[str, Any]] = {}
    for name, settings in tasks.items():
        users.setdefault(origin_task(name, settings), settings)
    return users


def compare_with_published(
    ours: pd.DataFrame,
    published: pd.DataFrame,
    tasks: Mapping[str, Mapping[str, Any]],
    model_ensembles: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per (task, metric) that has both our test metrics and a published figure for the task's source.

    ``ours`` is genolm's long metric table (columns task, model, seed, metric, value, ci_low, ci_high). Models whose
    name starts with ``baseline`` never count as ours. Per task and metric:

    - the best published value (highest; all reported metrics are higher-is-better; ties keep the first row),
    - our best model by mean over seeds (ties broken by model name), its mean, and the number of seeds (for a
      seed ensemble, one table, the seeds of the model it averages; for a model ensemble, named in
      ``model_ensembles``, every seed of every member),
    - the 95% bootstrap interval of that model's first (lowest) seed; for a cross-validated task (fold tasks
      pooled by `genolm.cv.pool_folds`) the mean over folds and its +/- 1.96 SE interval,
    - ``difference`` = ours - published, and ``outside_ci``: the published value lies outside that interval
      (missing where the interval is unknown).

    Rows follow the order of ``tasks`` and then genolm's metric order.
    """
    missing = sorted(set(METRIC_COLUMNS) - set(ours.columns))
    if missing:
        raise InputFormatError(f"metric table: missing column(s) {', '.join(missing)}")
    missing = sorted(set(PUBLISHED_COLUMNS) - set(published.columns))
    if missing:
        raise InputFormatError(f"published metrics: missing column(s) {', '.join(missing)}")

    ours = pool_folds(ours, tasks)
    candidates = ours[
        ~ours["model"].astype(str).str.startswith("baseline")
        & ours["metric"].isin(REPORTED_METRICS)
        & ours["value"].notna()
    ]
    rows = []
    for task, settings in _user_tasks(tasks).items():
        source, split = _task_source(task, settings)
        figures = published[published["benchmark"].isin(benchmarks_of(source))]
        mine = candidates[candidates["task"] == task]
        if figures.empty or mine.empty:
            log.debug("task %s (%s): nothing to compare", task, source)
            continue
        for metric in REPORTED_METRICS:
            theirs = figures[figures["metric"] == metric]
            scores = mine[mine["metric"] == metric]
            if theirs.empty or scores.empty:
                continue
            best_published = theirs.iloc[int(theirs["value"].to_numpy().argmax())]  # first maximum, in file order
            means = scores.groupby("model", sort=True)["value"].mean()
            model = str(means.idxmax())  # first maximum in sorted model order
            runs = scores[scores["model"] == model].sort_values("seed", kind="stable")
            low, high = float(runs["ci_low"].iloc[0]), float(runs["ci_high"].iloc[0])
            value, reference = float(means[model]), float(best_published["value"])
            outside = pd.NA if math.isnan(low) or math.isnan(high) else bool(reference < low or reference > high)
            rows.append(
                {
                    "benchmark": best_published["benchmark"],
                    "task": task,
                    "split": split,
                    "metric": metric,
                    "published_value": reference,
                    "published_method": best_published["method"],
                    "published_source": best_published["source"],
                    "published_protocol": best_published["protocol"],
                    "published_obtained": best_published["obtained"],
                    "model": model,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "difference": value - reference,
                    "outside_ci": outside,
                    "seeds": _seeds_behind(scores, model, runs, model_ensembles or {}),
                    "folds": int(runs["folds"].iloc[0]),
                }
            )
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    return table.astype({"outside_ci": "boolean", "seeds": "int64", "folds": "int64"})


def _seeds_behind(
    scores: pd.DataFrame, model: str, runs: pd.DataFrame, model_ensembles: Mapping[str, Sequence[str]]
) -> int:
    """How many trained runs a row of ours stands for: a seed ensemble's are the seeds of the model it averages, a
    model ensemble's the seeds of all its members."""
    if model.endswith(ENSEMBLE_SUFFIX):
        name = model.removesuffix(ENSEMBLE_SUFFIX)
        members = model_ensembles.get(name, [name])
        averaged = scores[scores["model"].isin(members)]
        if not averaged.empty:
            return int(averaged.groupby("model")["seed"].nunique().sum())
    return int(runs["seed"].nunique())


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"


def _seeds_cell(row: Any) -> str:
    seeds = f"{row.seeds} averaged" if str(row.model).endswith(ENSEMBLE_SUFFIX) else str(row.seeds)
    return f"{seeds} x {row.folds}" if row.folds > 1 else seeds


def comparison_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (numbers to 3 decimals) for docs/benchmarks.md."""
    header = (
        "task (split)",
        "benchmark",
        "metric",
        "ours",
        "model",
        "95% CI (first seed; ensemble's own)",
        "seeds x folds",
        "published",
        "method",
        "protocol",
        "ours - published",
        "outside CI",
        "source",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.itertuples(index=False):
        if pd.isna(row.outside_ci):
            outside = "n/a"
        else:
            outside = "yes" if row.outside_ci else "no"
        published = _fmt(row.published_value) + (" (derived)" if row.published_obtained == "derived" else "")
        cells = (
            f"{row.task} ({row.split})" if row.split else row.task,
            row.benchmark,
            row.metric,
            _fmt(row.value),
            row.model,
            f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]",
            _seeds_cell(row),
            published,
            row.published_method,
            row.published_protocol,
            f"{row.difference:+.3f}",
            outside,
            row.published_source,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_published_comparison(
    metric_paths: Sequence[str | Path],
    published_path: str | Path,
    tasks: Mapping[str, Mapping[str, Any]],
    table_path: str | Path,
    markdown_path: str | Path,
    model_ensembles: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Rule compare_published: our metric tables beside the shipped published figures, as TSV and Markdown."""
    ours, figures = read_metric_tables(metric_paths), read_published_metrics(published_path)
    table = compare_with_published(ours, figures, tasks, model_ensembles)
    with atomic_writer(table_path) as handle:
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")
    write_text_atomic(markdown_path, comparison_markdown(table))
    return table


def read_comparison(path: str | Path) -> pd.DataFrame:
    """A comparison TSV written by `write_published_comparison`, with its booleans and counts typed again."""
    table = pd.read_csv(path, sep="\t", dtype={"outside_ci": "string"}, keep_default_na=False, na_values=[""])
    missing = sorted(set(COMPARISON_COLUMNS) - set(table.columns))
    if missing:
        raise InputFormatError(f"{path}: not a published comparison (missing {', '.join(missing)})")
    outside = table["outside_ci"].map({"True": True, "False": False}, na_action="ignore")
    return table.assign(outside_ci=outside.astype("boolean"))
