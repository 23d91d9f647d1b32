"""Exported models of the tiny run: they load, predict like evaluate, and their scan matches the pipeline's."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import genolm


@pytest.mark.e2e
@pytest.mark.parametrize("task", ["promoter", "is"])
def test_exported_models_predict_like_evaluate(tiny_run, task):
    folder = tiny_run / "results" / "export" / f"{task}_cnn"
    model = genolm.load_model(folder)
    metrics = pd.read_csv(tiny_run / f"results/evaluate/{task}/cnn/seed1/metrics.tsv", sep="\t")
    assert model.threshold == pytest.approx(float(metrics.loc[metrics["metric"] == "threshold", "value"].iloc[0]))
    assert model.kind == task and (folder / "README.md").is_file()
    test = pd.read_csv(tiny_run / f"results/data/{task}/test.tsv", sep="\t")
    predictions = pd.read_csv(tiny_run / f"results/evaluate/{task}/cnn/seed1/predictions.tsv", sep="\t")
    expected = predictions.set_index("id").loc[test["id"], "score"].to_numpy()
    np.testing.assert_allclose(model.predict(list(test["sequence"])), expected, atol=1e-5)


@pytest.mark.e2e
def test_model_scan_gives_the_pipeline_calls(tiny_run, tmp_path):
    model = genolm.load_model(tiny_run / "results" / "export" / "is_cnn")
    model.scan(tiny_run / "results/data/demo/genome.fa", tmp_path)
    with (
        gzip.open(tmp_path / "calls.bed.gz", "rt") as mine,
        gzip.open(tiny_run / "results/scan/demo/is/cnn/calls.bed.gz", "rt") as pipeline,
    ):
        assert [line for line in mine if not line.startswith("#")] == [
            line for line in pipeline if not line.startswith("#")
        ]


@pytest.mark.e2e
def test_embedding_table_has_ids_groups_and_dims(tiny_run):
    table = pd.read_csv(tiny_run / "results/evaluate/is/cnn/seed1/embeddings.tsv.gz", sep="\t", keep_default_na=False)
    test = pd.read_csv(tiny_run / "results/data/is/test.tsv", sep="\t")
    assert table["id"].tolist() == test["id"].tolist()
    assert list(table.columns[:4]) == ["id", "label", "group", "dim_0"]
    assert (table.loc[table["label"] == 1, "group"] != "").all()  # demo IS families from the truth GFF3
