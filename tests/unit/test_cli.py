"""The `genolm` command: subcommands work outside Snakemake and bad input fails cleanly."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
import torch

from genolm.checkpoint import save_checkpoint
from genolm.cli import main
from genolm.datasets import load_corpus
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "tokenize", "train", "evaluate", "scan"):
        assert command in out


def test_tokenize_a_fasta_into_a_corpus(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nACGTACGTAC\r\n>b\nggccNNAATT\n")  # CRLF and soft-masked bases are fine
    assert main(["tokenize", str(fasta), "-k", "2", "--stride", "2", "-o", str(tmp_path / "g.npz")]) == 0
    streams, tokenizer = load_corpus(tmp_path / "g.npz")
    assert tokenizer == KmerTokenizer(k=2, stride=2)
    assert tokenizer.decode(streams[0]) == ["AC", "GT", "AC", "GT", "AC"]
    assert tokenizer.decode(streams[2]) == ["GG", "CC", "<unk>", "AA", "TT"]


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_tokenize_unknown_base_policy(tmp_path, capsys, policy):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nACGTNACGT\n")
    argv = ["tokenize", str(fasta), "-k", "2", "--unknown", policy, "-o", str(tmp_path / "g.npz")]
    if policy == "error":
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 1
        assert "record 'a'" in capsys.readouterr().err
        assert not (tmp_path / "g.npz").exists()
        return
    assert main(argv) == 0
    streams, tokenizer = load_corpus(tmp_path / "g.npz")
    assert tokenizer.unknown == "skip"
    assert tokenizer.decode(streams[0]) == ["AC", "CG", "GT", "AC", "CG", "GT"]


def test_bad_fasta_fails_with_a_clear_message_and_no_output(tmp_path, capsys):
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">x\nACGT\n>x\nACGT\n")
    with pytest.raises(SystemExit) as done:
        main(["tokenize", str(fasta), "-k", "2", "-o", str(tmp_path / "out.npz")])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "dup.fa" in err and "'x'" in err and "duplicate" in err
    assert not (tmp_path / "out.npz").exists()


@pytest.fixture
def is_checkpoint(tmp_path):
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(k=1)
    params = {"embed_dim": 4, "channels": [8], "kernel_sizes": [5], "dilations": [1], "dropout": 0.0}
    model = build_classifier("cnn", params, tokenizer.vocab_size, 100)
    meta = {
        "arch": "cnn",
        "params": params,
        "vocab": tokenizer.to_dict(),
        "window_tokens": 100,
        "window_bp": 100,
        "task": {"kind": "is", "strand_specific": False},
    }
    path = tmp_path / "model" / "model.safetensors"
    save_checkpoint(model, path, meta)
    return path


def test_scan_a_genome_with_a_checkpoint(tmp_path, is_checkpoint, capsys):
    rng = np.random.default_rng(1)
    fasta = tmp_path / "genome.fa"
    big = "".join(rng.choice(list("ACGT"), 3000))
    fasta.write_text(f">chrom\n{big}\n>tiny\nACGTACGT\n")
    out = tmp_path / "scan"
    code = main(
        ["scan", str(fasta), "--checkpoint", str(is_checkpoint), "--threshold", "0.0", "--step", "20", "-o", str(out)]
    )
    assert code == 0
    summary = capsys.readouterr().out
    assert "contigs_too_short" in summary
    # threshold 0 calls everything: one merged element over the whole scanned contig, without strand (IS)
    with pysam.TabixFile(str(out / "calls.bed.gz")) as bed:
        records = [line.split("\t") for line in bed.fetch("chrom")]
    assert [(r[1], r[2], r[5]) for r in records] == [("0", "3000", ".")]
    with pysam.TabixFile(str(out / "scores.bedgraph.gz")) as graph:
        assert len(list(graph.fetch("chrom"))) > 0
    assert (out / "calls.gff3.gz.tbi").is_file()


def test_context_rescores_and_calls_a_scan_like_the_pipeline(tmp_path, capsys):
    from test_promoter_context import TASK, _outputs, _toy_scan

    from genolm.annotations import read_gff3
    from genolm.genome_scan import HeldOut
    from genolm.promoter_context import promoter_context

    genes = _toy_scan(tmp_path)
    fitted = _outputs(tmp_path, "fit_")
    promoter_context(
        tmp_path / "scores.npz", tmp_path / "truth.gff3", genes, TASK, HeldOut((("chr", 40_000, 60_000),)), fitted
    )
    gff = tmp_path / "genes.gff3"
    lines = [
        f"chr\tx\tCDS\t{r.start + 1}\t{r.end}\t.\t{r.strand}\t0\tID=g{i}" for i, r in enumerate(genes.itertuples())
    ]
    gff.write_text("##gff-version 3\n##sequence-region chr 1 60000\n" + "\n".join(lines) + "\n")
    out = tmp_path / "cli"
    assert main(["context", str(tmp_path / "scores.npz"), "--model", str(fitted["model"]), "--gff", str(gff),
                 "-o", str(out)]) == 0  # fmt: skip
    assert "TSS calls" in capsys.readouterr().out
    calls = read_gff3(out / "calls.gff3.gz")
    assert len(calls) > 0
    assert calls[["contig", "start", "end", "strand"]].equals(
        read_gff3(fitted["gff"])[["contig", "start", "end", "strand"]]
    )
    with np.load(out / "scores.npz") as mine, np.load(fitted["scores"]) as theirs:
        assert np.array_equal(mine["plus_0"], theirs["plus_0"], equal_nan=True)
    assert (out / "scores.bedgraph.gz.tbi").is_file() and (out / "calls.bed.gz.tbi").is_file()
    # genes are required, from exactly one source
    with pytest.raises(SystemExit) as failed:
        main(["context", str(tmp_path / "scores.npz"), "--model", str(fitted["model"]), "-o", str(out)])
    assert failed.value.code == 1 and "--genbank FILE... or as --gff" in capsys.readouterr().err
