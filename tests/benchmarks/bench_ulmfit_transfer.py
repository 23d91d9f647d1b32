"""What a pretrained AWD-LSTM gives a ULMFiT classifier (a plain script; pytest does not collect it).

Trains the classifier of one task several times from the same seed, and prints, per variant, the best epoch,
validation AUROC, test AUROC and test MCC (threshold chosen on validation, as the pipeline's evaluation does):

- `scratch`: random weights (the `awdlstm` ablation);
- `lm`: the whole encoder of the language model (ULMFiT stage 3);
- `lm_lstm`: the LM's LSTM layers with a fresh embedding (which pretrained part helps or hurts);
- `lm_embedding`: the LM's embedding with fresh LSTM layers.

Each variant trains with every recipe given by `--recipe NAME=JSON` (TrainConfig keys; default: the benchmark
config's ULMFiT recipe and a flat one), so a recipe's effect and the initialisation's are told apart. Usage, from
the repository root, in a benchmark run's working directory layout:

    PYTHONPATH=workflow/scripts .venv/bin/python tests/benchmarks/bench_ulmfit_transfer.py \\
        --tokens /tmp/genolm-benchmarks/results/tokens/cdsecoli/k5_s2 \\
        --lm /tmp/genolm-benchmarks/results/finetune/cdsecoli/ulmfit/seed1/lm.safetensors

The encoder sizes come from the language model's checkpoint; the dropouts from `--params` (default: the
benchmark config's `ulmfit` block).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from named_settings import named_settings

from genolm import metrics
from genolm.checkpoint import load_checkpoint
from genolm.datasets import load_token_set
from genolm.models import build_classifier
from genolm.models.pretrained import load_pretrained_encoder
from genolm.train import TrainConfig, predict_proba, train_classifier

BENCHMARK_PARAMS = {"embed_p": 0.05, "input_p": 0.2, "hidden_p": 0.15, "weight_p": 0.2, "output_p": 0.1}
BENCHMARK_TRAIN = {"epochs": 12, "batch_size": 64, "patience": 3}
RECIPES = {
    "ulmfit": {"lr": 0.01, "gradual_unfreezing": True, "lr_decay_per_group": 2.6},
    "flat": {"lr": 0.003, "lr_decay_per_group": 1.0},
}
# Encoder state-dict prefixes taken from the language model in each variant (None: all of them).
VARIANTS: dict[str, tuple[str, ...] | None] = {
    "scratch": (),
    "lm": None,
    "lm_lstm": ("rnns.",),
    "lm_embedding": ("embedding.",),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=Path, required=True, help="folder with train/valid/test.npz of one task")
    parser.add_argument("--lm", type=Path, required=True, help="language-model checkpoint (.safetensors)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--recipe", action="append", default=[], help="NAME=JSON of TrainConfig keys (repeatable)")
    parser.add_argument("--params", default=json.dumps(BENCHMARK_PARAMS), help="JSON of AWD-LSTM dropouts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def initialise(model: torch.nn.Module, lm_state: dict[str, torch.Tensor], keep: tuple[str, ...] | None) -> None:
    """Copy the LM's encoder tensors whose names start with one of `keep` (all when None) into the classifier."""
    if keep == ():
        return
    load_pretrained_encoder(model.encoder, lm_state, "AWD-LSTM classifier", keep)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = {split: load_token_set(args.tokens / f"{split}.npz") for split in ("train", "valid", "test")}
    (train, tokenizer), (valid, _), (test, _) = sets["train"], sets["valid"], sets["test"]
    lm, lm_meta = load_checkpoint(args.lm)
    if lm_meta["vocab"] != tokenizer.to_dict():
        raise SystemExit(f"{args.lm}: its vocabulary differs from {args.tokens}")
    sizes = {key: lm_meta["params"][key] for key in ("emb_dim", "hidden", "layers")}
    params = {**json.loads(args.params), **sizes}
    lm_state = lm.encoder.state_dict()
    print("variant\trecipe\tbest_epoch\tvalid_auroc\ttest_auroc\ttest_mcc\tseconds")
    for recipe_name, recipe in named_settings(args.recipe, RECIPES).items():
        for variant in args.variants:
            torch.manual_seed(args.seed)
            model = build_classifier("awd_lstm", params, tokenizer.vocab_size, int(train.lengths.max()))
            initialise(model, lm_state, VARIANTS[variant])
            cfg = TrainConfig(**{**BENCHMARK_TRAIN, **recipe}, seed=args.seed, device="cpu", threads=args.threads)
            started = time.perf_counter()
            result = train_classifier(model, train, valid, cfg)
            model.load_state_dict(result.state_dict)
            p_valid = predict_proba(model, valid, 256, torch.device("cpu"))
            p_test = predict_proba(model, test, 256, torch.device("cpu"))
            threshold = metrics.choose_threshold(valid.labels, p_valid, "mcc")
            test_mcc = metrics.binary_metrics(test.labels, p_test, threshold)["mcc"]
            print(
                f"{variant}\t{recipe_name}\t{result.best_epoch}\t{metrics.auroc(valid.labels, p_valid):.4f}\t"
                f"{metrics.auroc(test.labels, p_test):.4f}\t{test_mcc:.4f}\t{time.perf_counter() - started:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
