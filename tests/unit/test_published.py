from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from genolm.errors import ConfigError, InputFormatError
from genolm.evaluate import REPORTED_METRICS
from genolm.metrics import binary_metrics
from genolm.published import (
    COMPARISON_COLUMNS,
    PUBLISHED_COLUMNS,
    SCHEMA_PATH,
    benchmarks_of,
    compare_with_published,
    comparison_markdown,
    read_comparison,
    read_published_metrics,
)
from genolm.sources.catalog import SOURCE_KINDS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "resources" / "published_metrics.tsv"
# Benchmarks with published figures but no genolm task source (yet).
NO_SOURCE_YET = {"cnnprom_human_nontata", "genomic_benchmarks_human_nontata_promoters"}

GOOD = {
    "benchmark": "cnnprom_ecoli",
    "method": "CNNProm",
    "metric": "mcc",
    "value": "0.84",
    "protocol": "holdout_70_10_20",
    "source": "paper abstract",
    "reference": "Umarov & Solovyev 2017",
    "doi": "10.1371/journal.pone.0171410",
    "obtained": "table",
    "note": "",
}


def write_tsv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = PUBLISHED_COLUMNS) -> Path:
    lines = ["\t".join(columns)] + ["\t".join(row.get(c, "") for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_shipped_table_validates():
    table = read_published_metrics(SHIPPED)
    assert list(table.columns) == list(PUBLISHED_COLUMNS)
    assert table["value"].dtype == float
    assert set(table["metric"]) <= set(REPORTED_METRICS)
    assert set(table["benchmark"]) - NO_SOURCE_YET <= set(SOURCE_KINDS)
    assert not table.duplicated(["benchmark", "method", "metric", "protocol"]).any()
    assert (table.loc[table["obtained"] == "derived", "note"].str.len() > 20).all()
    cnnprom = table[(table["benchmark"] == "cnnprom_ecoli") & (table["method"] == "CNNProm")]
    assert dict(zip(cnnprom["metric"], cnnprom["value"], strict=True)) == {
        "recall": 0.90,
        "specificity": 0.96,
        "mcc": 0.84,
        "accuracy": 0.947,
        "precision": 0.863,
    }


def test_shipped_table_passes_snakemake_validate():
    from snakemake.utils import validate

    validate(read_published_metrics(SHIPPED), str(SCHEMA_PATH))


def test_schema_metric_names_are_genolms():
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert tuple(schema["properties"]["metric"]["enum"]) == REPORTED_METRICS
    assert set(schema["required"]) == set(PUBLISHED_COLUMNS)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metric": "sensitivity"}, "column 'metric': 'sensitivity' is not one of"),
        ({"value": "1.7"}, "column 'value': 1.7 is greater than the maximum of 1"),
        ({"value": "nan"}, "column 'value': 'nan' is not of type 'number'"),
        ({"metric": "recall", "value": "-0.2"}, "column 'value': -0.2 is less than the minimum of 0"),
        ({"obtained": "derived"}, "column 'note': '' should be non-empty"),
        ({"obtained": "guessed"}, "column 'obtained': 'guessed' is not one of"),
        ({"doi": "https://doi.org/10.1/x"}, "column 'doi'"),
        ({"method": "CNNProm"}, "duplicate of row 1: same benchmark 'cnnprom_ecoli', method 'CNNProm'"),
    ],
)
def test_broken_row_names_file_row_and_problem(tmp_path, change, expected):
    second = {**GOOD, "method": "Transformer", **change}
    path = write_tsv(tmp_path / "published.tsv", [GOOD, second])
    with pytest.raises(InputFormatError) as info:
        read_published_metrics(path)
    message = str(info.value)
    assert f"{path}: row 2 (line 3): " in message
    assert expected in message
    assert "row 1 (line 2)" not in message


def test_negative_mcc_is_allowed(tmp_path):
    path = write_tsv(tmp_path / "published.tsv", [{**GOOD, "value": "-0.2"}])
    assert read_published_metrics(path)["value"].tolist() == [-0.2]


def test_missing_and_unknown_columns_are_named(tmp_path):
    no_doi = [c for c in PUBLISHED_COLUMNS if c != "doi"]
    path = write_tsv(tmp_path / "no_doi.tsv", [GOOD], columns=no_doi)
    with pytest.raises(InputFormatError, match=r"no_doi\.tsv: header \(line 1\): missing column\(s\) doi"):
        read_published_metrics(path)
    path = write_tsv(tmp_path / "extra.tsv", [{**GOOD, "pages": "3"}], columns=[*PUBLISHED_COLUMNS, "pages"])
    with pytest.raises(InputFormatError, match=r"extra\.tsv: header \(line 1\): unknown column\(s\) pages"):
        read_published_metrics(path)


def test_short_row_is_reported_with_its_line(tmp_path):
    path = tmp_path / "short.tsv"
    path.write_text("\t".join(PUBLISHED_COLUMNS) + "\n\ncnnprom_ecoli\tCNNProm\tmcc\n", encoding="utf-8")
    expected = r"short\.tsv: row 1 \(line 3\): 3 tab-separated fields, the header has 10"
    with pytest.raises(InputFormatError, match=expected):
        read_published_metrics(path)


# A known confusion matrix at threshold 0.5: tp=3, fn=1, tn=5, fp=1.
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
S = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.45])
MCC = (3 * 5 - 1 * 1) / math.sqrt((3 + 1) * (3 + 1) * (5 + 1) * (1 + 5))  # 14 / 24


def test_known_confusion_matrix_gives_hand_computed_metrics():
    values = binary_metrics(Y, S, threshold=0.5)
    assert (values["tp"], values["fn"], values["tn"], values["fp"]) == (3, 1, 5, 1)
    assert values["mcc"] == pytest.approx(14 / 24)
    assert values["recall"] == pytest.approx(3 / 4)
    assert values["specificity"] == pytest.approx(5 / 6)


def metric_table() -> pd.DataFrame:
    cnn1 = binary_metrics(Y, S, threshold=0.5)  # seed 1 of the cnn on task ecoli
    rows = [
        # seed 2 listed first: the interval must still come from the lowest seed
        ("ecoli", "cnn", 2, "mcc", MCC + 0.1, 0.60, 0.75),
        ("ecoli", "cnn", 1, "mcc", cnn1["mcc"], 0.40, 0.70),
        ("ecoli", "cnn", 1, "recall", cnn1["recall"], 0.60, 0.90),
        ("ecoli", "cnn", 2, "recall", 0.85, 0.70, 0.95),
        ("ecoli", "cnn", 1, "threshold", 0.5, np.nan, np.nan),
        ("ecoli", "ulmfit", 1, "mcc", 0.55, 0.45, 0.65),
        ("ecoli", "ulmfit", 2, "mcc", 0.57, 0.47, 0.67),
        ("ecoli", "ulmfit", 1, "recall", 0.95, 0.85, 0.99),
        ("ecoli", "baseline_gc_content", 1, "mcc", 0.99, 0.98, 1.0),  # never "ours"
        ("ecolistrict", "cnn", 1, "mcc", 0.50, np.nan, np.nan),
        ("is", "cnn", 1, "mcc", 0.90, 0.85, 0.95),  # no published figures for its source
    ]
    return pd.DataFrame(rows, columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"])


TASKS = {
    "ecoli": {"source": "cnnprom_ecoli", "split": {"method": "random"}},
    "ecolistrict": {"source": "cnnprom_ecoli", "split": {"method": "cluster"}},
    "is": {"source": "isfinder_amr", "split": {"method": "cluster"}},
}


@pytest.fixture()
def published(tmp_path) -> pd.DataFrame:
    rows = [
        GOOD,
        {**GOOD, "metric": "recall", "value": "0.90"},
        {**GOOD, "method": "Transformer (nmach22)", "value": "0.863", "protocol": "random_stratified"},
        {**GOOD, "method": "Genomic-ULMFiT", "value": "0.871", "protocol": "random_76.5_8.5_15", "obtained": "plot"},
        {**GOOD, "metric": "accuracy", "value": "0.95"},  # no accuracy of ours: no row
        {**GOOD, "benchmark": "cnnprom_bsubtilis", "value": "0.86"},  # no task: no row
    ]
    return read_published_metrics(write_tsv(tmp_path / "published.tsv", rows))


def test_comparison_joins_best_published_to_best_of_ours(published):
    table = compare_with_published(metric_table(), published, TASKS)
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert list(zip(table["task"], table["metric"], strict=True)) == [
        ("ecoli", "recall"),
        ("ecoli", "mcc"),
        ("ecolistrict", "mcc"),
    ]
    recall, mcc, strict = (row for _, row in table.iterrows())

    # mcc: the cnn's mean over seeds beats the ulmfit's; the baseline's 0.99 is ignored
    assert mcc["model"] == "cnn"
    assert mcc["benchmark"] == "cnnprom_ecoli"
    assert mcc["split"] == "random split"
    assert mcc["value"] == pytest.approx(MCC + 0.05)
    assert mcc["seeds"] == 2
    assert mcc["published_value"] == pytest.approx(0.871)
    assert mcc["published_method"] == "Genomic-ULMFiT"
    assert mcc["published_protocol"] == "random_76.5_8.5_15"
    assert mcc["published_obtained"] == "plot"
    assert (mcc["ci_low"], mcc["ci_high"]) == (0.40, 0.70)  # seed 1's interval
    assert mcc["difference"] == pytest.approx(MCC + 0.05 - 0.871)
    assert mcc["outside_ci"] is True

    # recall: ulmfit's single seed (0.95) beats the cnn's mean (0.80); 0.90 lies inside its [0.85, 0.99]
    assert recall["model"] == "ulmfit"
    assert recall["value"] == pytest.approx(0.95)
    assert recall["seeds"] == 1
    assert recall["published_method"] == "CNNProm"
    assert recall["difference"] == pytest.approx(0.05)
    assert recall["outside_ci"] is False

    # same benchmark through the leakage-aware task; no interval means no verdict
    assert strict["split"] == "cluster split"
    assert strict["value"] == pytest.approx(0.50)
    assert pd.isna(strict["outside_ci"])


def test_a_seed_ensemble_row_counts_the_seeds_it_averages(published):
    ensemble = pd.DataFrame(
        [("ecoli", "cnn_ensemble", 0, "mcc", 0.86, 0.80, 0.90)],
        columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"],
    )
    table = compare_with_published(pd.concat([metric_table(), ensemble]), published, TASKS)
    mcc = table[(table["task"] == "ecoli") & (table["metric"] == "mcc")].iloc[0]
    assert (mcc["model"], mcc["seeds"], mcc["ci_low"]) == ("cnn_ensemble", 2, 0.80)  # the cnn's two seeds
    line = next(line for line in comparison_markdown(table).splitlines() if "| cnn_ensemble |" in line)
    assert "| [0.800, 0.900] | 2 averaged | 0.871 |" in line


def test_a_model_ensemble_row_counts_every_seed_of_every_member(published):
    ensemble = pd.DataFrame(
        [("ecoli", "both_ensemble", 0, "mcc", 0.88, 0.82, 0.93)],
        columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"],
    )
    ours = pd.concat([metric_table(), ensemble])
    table = compare_with_published(ours, published, TASKS, {"both": ["cnn", "ulmfit"]})
    mcc = table[(table["task"] == "ecoli") & (table["metric"] == "mcc")].iloc[0]
    assert (mcc["model"], mcc["seeds"]) == ("both_ensemble", 4)  # two cnn seeds and two ulmfit seeds
    line = next(line for line in comparison_markdown(table).splitlines() if "| both_ensemble |" in line)
    assert "| 4 averaged |" in line
    unnamed = compare_with_published(ours, published, TASKS)  # without the mapping it cannot know the members
    assert unnamed.query("task == 'ecoli' and metric == 'mcc'")["seeds"].iloc[0] == 1


def test_published_value_on_the_interval_bound_is_inside(published):
    ours = metric_table()
    ours.loc[(ours["model"] == "ulmfit") & (ours["metric"] == "recall"), "ci_high"] = 0.90
    ours.loc[(ours["model"] == "ulmfit") & (ours["metric"] == "recall"), "ci_low"] = 0.90
    table = compare_with_published(ours, published, TASKS)
    assert table.loc[table["metric"] == "recall", "outside_ci"].tolist() == [False]


def test_task_without_source_is_a_config_error(published):
    with pytest.raises(ConfigError, match=r"tasks\.ecoli: no 'source'"):
        compare_with_published(metric_table(), published, {"ecoli": {"split": {"method": "random"}}})


def test_markdown_has_header_and_joined_rows(published):
    text = comparison_markdown(compare_with_published(metric_table(), published, TASKS))
    lines = text.splitlines()
    assert lines[0].startswith(
        "| task (split) | benchmark | metric | ours | model | 95% CI (first seed; ensemble's own) | seeds x folds |"
    )
    assert set(lines[1]) == {"|", "-"}
    assert len(lines) == 2 + 3
    mcc_line = next(line for line in lines if line.startswith("| ecoli (random split) | cnnprom_ecoli | mcc |"))
    assert f"| {MCC + 0.05:.3f} | cnn | [0.400, 0.700] | 2 | 0.871 | Genomic-ULMFiT |" in mcc_line
    assert f"| {MCC + 0.05 - 0.871:+.3f} | yes |" in mcc_line
    assert "| n/a |" in lines[-1]  # the interval-less ecolistrict row


def test_comparison_round_trips_through_its_tsv(published, tmp_path):
    table = compare_with_published(metric_table(), published, TASKS)
    path = tmp_path / "comparison.tsv"
    table.to_csv(path, sep="\t", index=False)
    again = read_comparison(path)
    assert again["outside_ci"].tolist() == table["outside_ci"].tolist()
    assert comparison_markdown(again) == comparison_markdown(table)


def test_a_source_joins_the_benchmarks_filed_under_other_names(published):
    rows = [
        ("human", "cnn", 1, "mcc", 0.8, 0.75, 0.85),
        ("human", "cnn", 1, "accuracy", 0.9, 0.88, 0.92),
    ]
    ours = pd.DataFrame(rows, columns=["task", "model", "seed", "metric", "value", "ci_low", "ci_high"])
    figures = pd.concat(
        [
            published.iloc[:1].assign(benchmark="cnnprom_human_nontata", metric="mcc", value=0.89),
            published.iloc[:1].assign(benchmark="genomic_benchmarks_human_nontata_promoters", metric="accuracy"),
        ],
        ignore_index=True,
    )
    tasks = {"human": {"source": "genomic_benchmarks_human_nontata", "split": {"method": "random"}}}
    table = compare_with_published(ours, figures, tasks).set_index("metric")
    assert table.loc["mcc", "benchmark"] == "cnnprom_human_nontata"
    assert table.loc["accuracy", "benchmark"] == "genomic_benchmarks_human_nontata_promoters"
    assert benchmarks_of("cnnprom_ecoli") == ("cnnprom_ecoli",)
