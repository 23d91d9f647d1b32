"""Exported model folders (genolm.model_export), genolm.load_model and the export/predict/scan/embed commands."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_checkpoint import trained_like  # the checkpoint tests' perturbation (tests/unit is on sys.path)

import genolm
from genolm.checkpoint import LANGUAGE_MODEL_ARCH, load_checkpoint, save_checkpoint
from genolm.cli import main
from genolm.datasets import TASK_COLUMNS, tokenize_sequences
from genolm.errors import CheckpointError
from genolm.genome_scan import output_paths, scan_genome
from genolm.kmers import KmerTokenizer
from genolm.model_export import CARD_FILE, export_model, load_model, read_card
from genolm.models import build_classifier, build_language_model
from genolm.provenance import sha256_file
from genolm.train import predict_proba

WINDOW = 60
ARCHS = {
    "cnn": ({"embed_dim": 4, "channels": [8], "kernel_sizes": [5], "dilations": [1], "head_hidden": 6}, 1),
    "awd_lstm": ({"emb_dim": 6, "hidden": 8, "layers": 2, "head_hidden": 5}, 2),
}
PROMOTER = {
    "kind": "promoter",
    "strand_specific": True,
    "source": "demo",
    "scan": {"step": 7, "peak_distance": 20, "tss_offset": 45, "bedgraph_bin": 20},
}
IS_TASK = {"kind": "is", "strand_specific": False, "source": "isfinder_amr", "scan": {"step": 10, "min_windows": 1}}


def random_dna(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]


def make_checkpoint(folder: Path, arch: str = "cnn", kind: str = "promoter") -> Path:
    params, k = ARCHS[arch]
    tokenizer = KmerTokenizer(k=k, stride=1)
    torch.manual_seed(0)
    window_tokens = tokenizer.n_tokens(WINDOW)
    model = trained_like(build_classifier(arch, params, tokenizer.vocab_size, window_tokens))
    path = folder / "train" / arch / "model.safetensors"
    meta = {
        "arch": arch,
        "params": params,
        "vocab": tokenizer.to_dict(),
        "window_bp": WINDOW,
        "task": {"kind": kind, "strand_specific": kind == "promoter"},
        "train": {"seed": 3},
        "best_epoch": 2,
    }
    if arch == "cnn":
        meta["window_tokens"] = window_tokens
    save_checkpoint(model, path, meta)
    return path


def make_metrics(path: Path, threshold: float = 0.42) -> Path:
    rows = [
        ("mcc", 0.61, 0.5, 0.7),
        ("auroc", 0.9, 0.85, 0.95),
        ("threshold", threshold, None, None),
        ("n", 40, None, None),
    ]
    table = pd.DataFrame(
        [
            {"task": "t", "model": "m", "seed": 1, "metric": m, "value": v, "ci_low": lo, "ci_high": hi}
            for m, v, lo, hi in rows
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False)
    return path


def make_tables(folder: Path, groups: bool = False) -> dict[str, Path]:
    tables = {}
    for index, split in enumerate(("train", "valid", "test")):
        sequences = random_dna(8, WINDOW, seed=10 + index)
        table = pd.DataFrame(
            {
                "id": [f"{split}{i}" for i in range(8)],
                "label": [i % 2 for i in range(8)],
                "split": split,
                "contig": "chrom",
                "start": [100 * i for i in range(8)],
                "end": [100 * i + WINDOW for i in range(8)],
                "strand": "+",
                "sequence": sequences,
            }
        )[list(TASK_COLUMNS)]
        if groups:
            table["group"] = ["neg" if i % 2 == 0 else f"IS{i % 3}" for i in range(8)]
        tables[split] = folder / "data" / f"{split}.tsv"
        tables[split].parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(tables[split], sep="\t", index=False)
    return tables


@pytest.fixture
def exported(tmp_path):
    checkpoint = make_checkpoint(tmp_path)
    metrics = make_metrics(tmp_path / "metrics.tsv")
    tables = make_tables(tmp_path)
    out = tmp_path / "export" / "promoter_cnn"
    card = export_model(checkpoint, metrics, out, "promoter", PROMOTER, "cnn", {"arch": "cnn"}, tables, seed=3)
    return out, checkpoint, metrics, tables, card


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_export_then_load_predicts_exactly_like_the_checkpoint(tmp_path, arch):
    checkpoint = make_checkpoint(tmp_path, arch)
    out = tmp_path / "export" / arch
    export_model(checkpoint, make_metrics(tmp_path / "metrics.tsv"), out, "promoter", PROMOTER, arch)
    sequences = random_dna(9, WINDOW, seed=5) + random_dna(2, WINDOW + 13, seed=6)
    model = genolm.load_model(out)
    reference, meta = load_checkpoint(checkpoint)
    tokens = tokenize_sequences(
        [str(i) for i in range(11)], sequences, [0] * 11, KmerTokenizer.from_dict(meta["vocab"])
    )
    expected = predict_proba(reference, tokens)
    np.testing.assert_array_equal(model.predict(sequences), expected)
    np.testing.assert_array_equal(model.predict([seq.lower() for seq in sequences]), expected)
    assert model.embed(sequences).shape[0] == 11
    np.testing.assert_array_equal(model.classify(sequences), expected >= 0.42)


def test_card_holds_threshold_metrics_checksums_and_data(exported):
    out, checkpoint, _, tables, card = exported
    stored = json.loads((out / CARD_FILE).read_text())
    assert stored == card
    assert card["threshold"]["value"] == pytest.approx(0.42)
    mcc = next(row for row in card["test_metrics"] if row["metric"] == "mcc")
    assert (mcc["value"], mcc["ci_low"], mcc["ci_high"]) == (0.61, 0.5, 0.7)
    assert all(row["metric"] != "threshold" for row in card["test_metrics"])
    assert card["files"]["model.safetensors"] == sha256_file(checkpoint) == sha256_file(out / "model.safetensors")
    assert card["files"]["model.json"] == sha256_file(out / "model.json")
    assert card["files"]["README.md"] == sha256_file(out / "README.md")
    assert card["model"]["arch"] == "cnn" and card["model"]["window_bp"] == WINDOW
    assert card["model"]["vocab"] == KmerTokenizer(k=1).to_dict()
    assert card["task"] | {"scan": None} == {
        "name": "promoter",
        "kind": "promoter",
        "strand_specific": True,
        "source": "demo",
        "scan": None,
    }
    assert card["task"]["scan"]["step"] == 7 and card["task"]["scan"]["min_overlap"] == 0.5  # default filled in
    train = next(row for row in card["training_data"]["tables"] if row["split"] == "train")
    assert train == {
        "split": "train",
        "file": "train.tsv",
        "sha256": sha256_file(tables["train"]),
        "rows": 8,
        "positives": 4,
        "negatives": 4,
    }
    assert card["training"] == {"seed": 3, "best_epoch": 2, "best_valid_loss": None}
    assert any("Strand-specific" in note for note in card["limitations"])
    assert any("synthetic" in note for note in card["limitations"])
    assert card["versions"]["exported_with"]["genolm"] == genolm.__version__
    readme = (out / "README.md").read_text()
    assert "0.42" in readme and "| mcc | 0.61 | 0.5 | 0.7 |" in readme and "genolm.load_model" in readme


def test_is_card_says_strand_agnostic_and_not_for_eukaryotes(tmp_path):
    checkpoint = make_checkpoint(tmp_path, kind="is")
    card = export_model(checkpoint, make_metrics(tmp_path / "m.tsv"), tmp_path / "is_cnn", "is", IS_TASK, "cnn")
    assert card["task"]["strand_specific"] is False
    assert any("Strand-agnostic" in note for note in card["limitations"])
    assert any("eukaryotic" in note for note in card["limitations"])
    assert "ISfinder" in card["intended_use"]


def test_tampered_or_missing_files_fail_clearly(exported, tmp_path):
    out = exported[0]
    weights = out / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(CheckpointError, match=r"model.safetensors: edited or corrupted"):
        load_model(out)
    weights.write_bytes(original)
    load_model(out)  # restored: loads again

    (out / "README.md").unlink()
    with pytest.raises(CheckpointError, match=r"README.md: missing"):
        load_model(out)
    (out / CARD_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"card.json is missing"):
        load_model(out)
    with pytest.raises(CheckpointError, match="no such model folder"):
        load_model(tmp_path / "nowhere")


def test_a_card_edited_to_another_architecture_is_refused(exported):
    out = exported[0]
    card = json.loads((out / CARD_FILE).read_text())
    card["model"]["params"]["channels"] = [16]
    (out / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=r"model.params disagrees with model.json"):
        load_model(out)
    card["format"] = "something-else"
    (out / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a genolm model card"):
        read_card(out)


def test_export_refuses_a_language_model(tmp_path):
    params = {"emb_dim": 6, "hidden": 8, "layers": 1}
    lm = build_language_model(params, KmerTokenizer(k=2).vocab_size)
    path = tmp_path / "lm.safetensors"
    save_checkpoint(lm, path, {"arch": LANGUAGE_MODEL_ARCH, "params": params, "vocab": KmerTokenizer(k=2).to_dict()})
    with pytest.raises(CheckpointError, match="not a classifier"):
        export_model(path, make_metrics(tmp_path / "m.tsv"), tmp_path / "out", "t", PROMOTER, "lm")
    assert not (tmp_path / "out").exists()


def test_three_line_api_and_a_light_import(exported):
    out = exported[0]
    env = {**os.environ, "PYTHONPATH": str(Path(genolm.__file__).parents[1])}  # the package as pytest sees it
    code = f"import genolm\nmodel = genolm.load_model({str(out)!r})\nprint(model.predict(['ACGT' * 15]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()[1:-1]) == pytest.approx(load_model(out).predict(["ACGT" * 15])[0], abs=1e-7)
    light = "import sys, genolm; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr


def genome(tmp_path: Path) -> Path:
    fasta = tmp_path / "genome.fa"
    first, second = random_dna(1, 1500, seed=21)[0], random_dna(1, 700, seed=22)[0]
    fasta.write_text(f">chrom\n{first}\n>plasmid\n{second}\n")
    return fasta


def read_gz(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line for line in handle if not line.startswith("#")]


def test_model_scan_equals_the_pipeline_scan_with_the_checkpoint(exported, tmp_path):
    out, checkpoint, metrics, _, card = exported
    fasta = genome(tmp_path)
    summary = load_model(out).scan(fasta, tmp_path / "by_model")
    reference = output_paths(tmp_path / "by_checkpoint")
    task = {"kind": "promoter", "strand_specific": True, "scan": card["task"]["scan"]}
    expected = scan_genome(
        fasta, checkpoint, metrics, task, reference, "genome.fa", "promoter", "cnn", device="cpu", bedgraph_bin=20
    )
    pd.testing.assert_frame_equal(
        summary.drop(columns=["seconds", "bp_per_s"]), expected.drop(columns=["seconds", "bp_per_s"])
    )
    assert summary.loc[0, "step"] == 7 and summary.loc[0, "threshold"] == pytest.approx(0.42)
    assert read_gz(reference["bed"])  # the comparison below is not between two empty files
    for name in ("bed", "gff", "bedgraph"):
        assert read_gz(tmp_path / "by_model" / reference[name].name) == read_gz(reference[name])
    with np.load(tmp_path / "by_model" / "scores.npz") as got, np.load(reference["scores"]) as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key])


def test_cli_export_predict_scan_and_embed(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path, kind="is")
    metrics = make_metrics(tmp_path / "metrics.tsv", threshold=0.3)
    tables = make_tables(tmp_path, groups=True)
    out = tmp_path / "is_cnn"
    assert main(["export", "--checkpoint", str(checkpoint), "--metrics", str(metrics), "--task", "is", "--step", "25",
                 "--source", "isfinder_amr", "--tables", *map(str, tables.values()), "-o", str(out)]) == 0  # fmt: skip
    card = read_card(out)
    assert card["task"]["kind"] == "is" and card["task"]["scan"]["step"] == 25 and card["model"]["name"] == "cnn"
    assert [row["split"] for row in card["training_data"]["tables"]] == ["train", "valid", "test"]

    sequences = random_dna(3, WINDOW, seed=8)
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">r{i}\n{seq}\n" for i, seq in enumerate(sequences)))
    assert main(["predict", "--model", str(out), "--fasta", str(fasta), "-o", str(tmp_path / "p.tsv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    expected = load_model(out).predict(sequences)
    assert list(predicted["id"]) == ["r0", "r1", "r2"]
    np.testing.assert_allclose(predicted["probability"], expected, rtol=1e-5)
    assert list(predicted["call"]) == [int(p >= 0.3) for p in expected]
    assert main(["predict", "--model", str(out), "--sequence", sequences[0], "-o", str(tmp_path / "one.tsv")]) == 0
    assert pd.read_csv(tmp_path / "one.tsv", sep="\t")["id"].tolist() == ["seq1"]

    scan_dir = tmp_path / "scan"
    assert main(["scan", str(genome(tmp_path)), "--model", str(out), "-o", str(scan_dir)]) == 0
    summary = pd.read_csv(scan_dir / "summary.tsv", sep="\t")
    assert (summary.loc[0, "step"], summary.loc[0, "threshold"], summary.loc[0, "task"]) == (25, 0.3, "is")
    assert main(["scan", str(genome(tmp_path)), "--model", str(out), "--threshold", "0.9", "-o", str(scan_dir)]) == 0
    assert pd.read_csv(scan_dir / "summary.tsv", sep="\t").loc[0, "threshold"] == 0.9
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["scan", str(genome(tmp_path)), "--model", str(out), "--metrics", str(metrics), "-o", str(scan_dir)])
    assert "--metrics goes with --checkpoint" in capsys.readouterr().err

    emb = tmp_path / "emb.tsv.gz"
    assert main(["embed", "--model", str(out), "--table", str(tables["test"]), "-o", str(emb)]) == 0
    table = pd.read_csv(emb, sep="\t", keep_default_na=False)
    assert list(table.columns[:3]) == ["id", "label", "group"] and table.shape == (8, 3 + 8)
    assert list(table["group"]) == pd.read_csv(tables["test"], sep="\t")["group"].tolist()
    test_sequences = pd.read_csv(tables["test"], sep="\t")["sequence"].tolist()
    np.testing.assert_allclose(
        table.iloc[:, 3:].to_numpy(), load_model(out).embed(test_sequences), rtol=1e-5, atol=1e-6
    )

    lm = build_language_model({"emb_dim": 6, "hidden": 8, "layers": 2}, KmerTokenizer(k=1).vocab_size)
    lm_path = tmp_path / "lm.safetensors"
    save_checkpoint(lm, lm_path, {"arch": LANGUAGE_MODEL_ARCH, "params": {"emb_dim": 6, "hidden": 8, "layers": 2},
                                  "vocab": KmerTokenizer(k=1).to_dict()})  # fmt: skip
    assert main(["embed", "--checkpoint", str(lm_path), "--fasta", str(fasta), "-o", str(tmp_path / "lm.tsv")]) == 0
    lm_table = pd.read_csv(tmp_path / "lm.tsv", sep="\t", keep_default_na=False)
    assert lm_table.shape == (3, 3 + 6) and list(lm_table["id"]) == ["r0", "r1", "r2"]
    assert (lm_table["label"] == "").all() and (lm_table["group"] == "").all()


def test_family_figure_and_report_parts(exported, tmp_path):
    from genolm.report_export import export_parts, family_figure, group_colours

    rng = np.random.default_rng(0)
    families = ["IS3"] * 12 + ["IS5"] * 8 + [f"ISx{i}" for i in range(9)] + [""] * 2
    projection = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(31 + 10)],
            "label": [1] * 31 + [0] * 10,
            "group": families + ["chrom"] * 10,
            "x": rng.normal(size=41),
            "y": rng.normal(size=41),
        }
    )
    colours = group_colours(projection, top=3)
    assert list(colours) == ["IS3", "IS5", "ISx0"]  # most frequent first, ties by name
    figure = family_figure("t", projection, top=3)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["negative (10)", "IS3 (12)", "IS5 (8)", "ISx0 (1)", "other (10)"]
    path = tmp_path / "proj.tsv"
    projection.to_csv(path, sep="\t", index=False)
    out, card = exported[0], exported[4]
    parts = export_parts([{"card": out / CARD_FILE, "projection": path}], tmp_path / "figures")
    html = "".join(parts)
    assert "<th>test MCC [95% CI]</th>" in html and "0.610 [0.500, 0.700]" in html
    assert card["files"]["model.safetensors"][:12] in html and "0.42" in html
    assert "data:image/png;base64" in html and (tmp_path / "figures" / "embeddings_groups_promoter_cnn.png").is_file()
    no_groups = projection.assign(group="")
    no_groups.to_csv(path, sep="\t", index=False)
    assert len(export_parts([{"card": out / CARD_FILE, "projection": path}], tmp_path / "figures")) == 2
    assert export_parts([], tmp_path / "figures") == []
