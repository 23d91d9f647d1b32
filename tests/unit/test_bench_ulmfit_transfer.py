"""tests/benchmarks/bench_ulmfit_transfer.py: which encoder tensors each variant takes from the LM, and a whole
tiny run through its command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from genolm.checkpoint import save_checkpoint
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier, build_language_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ulmfit_transfer.py"
SIZES = {"emb_dim": 8, "hidden": 12, "layers": 2}


def load_script():
    spec = importlib.util.spec_from_file_location("bench_ulmfit_transfer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def language_model(vocab_size: int):
    torch.manual_seed(7)
    lm = build_language_model(SIZES, vocab_size)
    with torch.no_grad():  # far from any fresh initialisation, so copied tensors are recognisable
        for tensor in lm.encoder.state_dict().values():
            tensor.add_(3.0)
    return lm


def test_each_variant_takes_only_its_tensors_from_the_language_model() -> None:
    bench = load_script()
    vocab = KmerTokenizer(k=3).vocab_size
    lm_state = language_model(vocab).encoder.state_dict()
    for variant, taken in (
        ("scratch", set()),
        ("lm", set(lm_state)),
        ("lm_lstm", {name for name in lm_state if name.startswith("rnns.")}),
        ("lm_embedding", {"embedding.weight"}),
    ):
        torch.manual_seed(0)
        model = build_classifier("awd_lstm", dict(SIZES), vocab, 10)
        fresh = {name: tensor.clone() for name, tensor in model.encoder.state_dict().items()}
        bench.initialise(model, lm_state, bench.VARIANTS[variant])
        for name, tensor in model.encoder.state_dict().items():
            expected = lm_state[name] if name in taken else fresh[name]
            assert torch.equal(tensor, expected), (variant, name)


def test_a_tiny_run_prints_one_row_per_variant_and_recipe(tmp_path, capsys, motif_token_sets) -> None:
    tokenizer = KmerTokenizer(k=3)
    motif_token_sets(tmp_path, tokenizer)
    lm_path = tmp_path / "lm.safetensors"
    meta = {"kind": "language_model", "arch": "awd_lstm_lm", "params": SIZES, "vocab": tokenizer.to_dict()}
    save_checkpoint(language_model(tokenizer.vocab_size), lm_path, meta)

    load_script().main(
        ["--tokens", str(tmp_path), "--lm", str(lm_path), "--variants", "scratch", "lm_lstm",
         "--recipe", 'quick={"epochs": 2, "lr": 0.01}', "--threads", "1"]
    )  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t") == [
        "variant", "recipe", "best_epoch", "valid_auroc", "test_auroc", "test_mcc", "seconds"
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[:2] for row in rows] == [["scratch", "quick"], ["lm_lstm", "quick"]]
    for row in rows:
        assert 1 <= int(row[2]) <= 2
        assert all(-1.0 <= float(value) <= 1.0 for value in row[3:6])
