"""tests/benchmarks/bench_cnn_variants.py: a whole tiny run through its command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from genolm.kmers import KmerTokenizer

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cnn_variants.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_cnn_variants", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_run_prints_one_row_per_variant_with_its_seeds(tmp_path, capsys, motif_token_sets) -> None:
    motif_token_sets(tmp_path, KmerTokenizer(k=1))
    model = {"arch": "cnn", "params": {"embed_dim": 4, "channels": [8], "kernel_sizes": [5], "dilations": [1]},
             "train": {"epochs": 2, "batch_size": 8, "lr": 0.01, "patience": 2}}  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"models": {"cnn": model}}))
    load_script().main(
        ["--tokens", str(tmp_path), "--config", str(config), "--seeds", "1", "2", "--threads", "1",
         "--variant", "base={}", "--variant", 'wider={"params": {"channels": [16]}, "train": {"shift_jitter": 1}}']
    )  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t") == [
        "variant", "valid_auroc", "valid_auprc", "valid_mcc", "test_mcc_mean", "test_mcc_sd", "ensemble_test_mcc",
        "best_epochs", "seconds",
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[0] for row in rows] == ["base", "wider"]
    for row in rows:
        assert all(0.0 <= float(value) <= 1.0 for value in row[1:3])
        assert all(-1.0 <= float(value) <= 1.0 for value in (row[3], row[4], row[6]))
        assert float(row[5]) >= 0.0
        assert [1 <= int(epoch) <= 2 for epoch in row[7].split(",")] == [True, True]  # one per seed


def test_the_default_variants_change_only_known_settings() -> None:
    from genolm.models.cnn import CNNConfig
    from genolm.train import TrainConfig

    for name, change in load_script().VARIANTS.items():
        assert set(change) <= {"params", "train"}, name
        assert set(change.get("params", {})) <= set(CNNConfig.__dataclass_fields__), name
        assert set(change.get("train", {})) <= set(TrainConfig.__dataclass_fields__), name
