"""Language-model training throughput (tokens/s) of the AWD-LSTM (a plain script; pytest does not collect it).

Usage, from the repository root:

    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_lm_throughput.py              # CPU, all cores
    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_lm_throughput.py --device cuda

The default model is the published Genomic-ULMFiT setting: 5-mers with stride 2 (1,024 k-mers plus special
tokens), embedding 400, three layers with 1,150 hidden units, all AWD-LSTM dropouts on (about 20 M parameters).
A step is what `pretrain_language_model` does per batch: forward with weight drop, tied decoder, cross-entropy
plus AR/TAR, backward, gradient clipping and an AdamW update. Tokens/s counts predicted tokens
(batch x bptt per step), timed over `--steps` steps after `--warmup` untimed ones. On CUDA the step runs in fp32
(TF32 tensor cores for the LSTM) and under bf16 autocast, the two modes training uses.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from genolm.kmers import KmerTokenizer
from genolm.models import build_language_model
from genolm.models.awd_lstm import ar_tar_loss

PUBLISHED = {"emb_dim": 400, "hidden": 1150, "layers": 3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, nargs="+", default=None, help="default: 32 on CPU, 64 256 on CUDA")
    parser.add_argument("--bptt", type=int, default=70, help="tokens per truncated-BPTT segment")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--emb-dim", type=int, default=PUBLISHED["emb_dim"])
    parser.add_argument("--hidden", type=int, default=PUBLISHED["hidden"])
    parser.add_argument("--layers", type=int, default=PUBLISHED["layers"])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def tokens_per_second(
    lm: torch.nn.Module, vocab_size: int, batch_size: int, bptt: int, steps: int, warmup: int, bf16: bool
) -> float:
    device = next(lm.parameters()).device
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-3)
    generator = torch.Generator(device="cpu").manual_seed(0)
    batches = [torch.randint(4, vocab_size, (batch_size, bptt + 1), generator=generator) for _ in range(4)]
    batches = [batch.to(device) for batch in batches]
    state = None
    lm.train()
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        batch = batches[step % len(batches)]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, raw, dropped, state = lm.step(batch[:, :-1], state)
        state = [(h.detach(), c.detach()) for h, c in state]
        loss = F.cross_entropy(logits.float().reshape(-1, vocab_size), batch[:, 1:].reshape(-1))
        loss = loss + ar_tar_loss(raw, dropped)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch_size * bptt / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    vocab_size = KmerTokenizer(k=args.k, stride=args.stride).vocab_size
    params = {"emb_dim": args.emb_dim, "hidden": args.hidden, "layers": args.layers}
    lm = build_language_model(params, vocab_size).to(device)
    n_params = sum(p.numel() for p in lm.parameters())
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    tokenizer = f"k={args.k}, stride={args.stride}"
    print(f"AWD-LSTM {params}, vocabulary {vocab_size} ({tokenizer}): {n_params / 1e6:.1f} M parameters")
    print("batch\tbptt\tprecision\ttokens_per_s")
    steps = args.steps or (50 if cuda else 10)
    for batch_size in args.batch_size or ([64, 256] if cuda else [32]):
        for bf16 in (False, True) if cuda else (False,):
            rate = tokens_per_second(lm, vocab_size, batch_size, args.bptt, steps, args.warmup, bf16)
            print(f"{batch_size}\t{args.bptt}\t{'bf16' if bf16 else 'fp32'}\t{rate:,.0f}")


if __name__ == "__main__":
    main()
