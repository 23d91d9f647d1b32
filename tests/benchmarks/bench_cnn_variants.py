"""CNN variants on one promoter task, with seed ensembles (a plain script; pytest does not collect it).

Trains each variant once per seed and prints, per variant: mean validation AUROC, AUPRC and MCC over the seeds
(what a choice between variants should rest on), then test MCC as mean ± sd and for the seed ensemble (mean
probability, threshold chosen on validation as the pipeline's evaluation does), and the best epochs. A variant
is `NAME=JSON` with `params` and `train` overrides of the base model, read from a config's model block. Usage,
from the repository root, with a benchmark run's tokens:

    PYTHONPATH=workflow/scripts .venv/bin/python tests/benchmarks/bench_cnn_variants.py \\
        --tokens /tmp/genolm-benchmarks/results/tokens/ecoli/k1_s1 --threads 2 \\
        --variant 'deep3={"params": {"channels": [64, 64, 64], "kernel_sizes": [15, 9, 5], "dilations": [1, 2, 4]}}'

Without `--variant` it runs the base model and the variants of :data:`VARIANTS`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from named_settings import named_settings

from genolm import metrics
from genolm.datasets import load_token_set
from genolm.models import build_classifier
from genolm.train import TrainConfig, predict_proba, seed_everything, train_classifier

REPO = Path(__file__).resolve().parents[2]
DEEP = {"channels": [64, 64, 64], "kernel_sizes": [15, 9, 5], "dilations": [1, 2, 4]}
VARIANTS: dict[str, dict[str, dict]] = {
    "base": {},
    "wide128": {"params": {"channels": [128, 128]}},
    "cnnprom1": {"params": {"channels": [200], "kernel_sizes": [21], "dilations": [1], "head_hidden": 128}},
    "deep3": {"params": DEEP},
    "deep4": {"params": {"channels": [64] * 4, "kernel_sizes": [15, 9, 5, 5], "dilations": [1, 2, 4, 8]}},
    "dropout0.5": {"params": {"dropout": 0.5}},
    "kernels9_7": {"params": {"kernel_sizes": [9, 7]}},
    "weight_decay0.05": {"train": {"weight_decay": 0.05}},
    "lr0.001": {"train": {"lr": 0.001, "epochs": 60, "patience": 10}},
    "jitter2": {"train": {"shift_jitter": 2}},
    "deep3_jitter2": {"params": DEEP, "train": {"shift_jitter": 2}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=Path, required=True, help="folder with train/valid/test.npz of one task")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "benchmarks.yaml")
    parser.add_argument("--model", default="cnn", help="the config's model block the variants change")
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON of params/train (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    (train, tokenizer), (valid, _), (test, _) = (
        load_token_set(args.tokens / f"{split}.npz") for split in ("train", "valid", "test")
    )
    base = yaml.safe_load(args.config.read_text(encoding="utf-8"))["models"][args.model]
    print(
        "variant\tvalid_auroc\tvalid_auprc\tvalid_mcc\ttest_mcc_mean\ttest_mcc_sd\tensemble_test_mcc\tbest_epochs\tseconds"
    )
    for name, change in named_settings(args.variant, VARIANTS).items():
        params = {**base.get("params", {}), **change.get("params", {})}
        recipe = {**base.get("train", {}), **change.get("train", {})}
        started, rows, valid_scores, test_scores = time.perf_counter(), [], [], []
        for seed in args.seeds:
            seed_everything(seed)
            model = build_classifier(base["arch"], params, tokenizer.vocab_size, int(train.lengths.max()))
            result = train_classifier(model, train, valid, TrainConfig(**recipe, seed=seed, device="cpu"))
            model.load_state_dict(result.state_dict)
            p_valid, p_test = predict_proba(model, valid), predict_proba(model, test)
            threshold = metrics.choose_threshold(valid.labels, p_valid, "mcc")
            rows.append(
                (
                    metrics.auroc(valid.labels, p_valid),
                    metrics.average_precision(valid.labels, p_valid),
                    metrics.binary_metrics(valid.labels, p_valid, threshold)["mcc"],
                    metrics.binary_metrics(test.labels, p_test, threshold)["mcc"],
                    result.best_epoch,
                )
            )
            valid_scores.append(p_valid)
            test_scores.append(p_test)
        table = np.array(rows)
        ensemble_valid, ensemble_test = np.mean(valid_scores, axis=0), np.mean(test_scores, axis=0)
        threshold = metrics.choose_threshold(valid.labels, ensemble_valid, "mcc")
        ensemble_mcc = metrics.binary_metrics(test.labels, ensemble_test, threshold)["mcc"]
        spread = table[:, 3].std(ddof=1) if len(rows) > 1 else float("nan")
        epochs = ",".join(str(int(epoch)) for epoch in table[:, 4])
        seconds = time.perf_counter() - started
        print(
            f"{name}\t{table[:, 0].mean():.4f}\t{table[:, 1].mean():.4f}\t{table[:, 2].mean():.4f}\t"
            f"{table[:, 3].mean():.4f}\t{spread:.4f}\t{ensemble_mcc:.4f}\t{epochs}\t{seconds:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
