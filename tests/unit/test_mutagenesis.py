from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.cli import main
from genolm.errors import ConfigError
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier
from genolm.mutagenesis import (
    BASES,
    Region,
    importance,
    mutagenesis,
    parse_region,
    region_bases,
    run_ism,
    tss_region,
    window_mutagenesis,
    write_ism,
)
from genolm.seqio import reverse_complement

PARAMS = {"embed_dim": 8, "channels": [8], "kernel_sizes": [5], "dilations": [1], "dropout": 0.0}
WINDOW = 21


def random_dna(length: int, seed: int) -> str:
    return "".join(np.array(list(BASES))[np.random.default_rng(seed).integers(0, 4, length)])


def weighted_scorer(weights: np.ndarray):
    """A position-aware toy model: sigmoid of a position x base weight sum, so every substitution matters."""

    def score(windows: list[str]) -> np.ndarray:
        codes = np.array([[BASES.index(b) for b in w] for w in windows])
        logits = weights[np.arange(codes.shape[1]), codes].sum(axis=1)
        return 1 / (1 + np.exp(-logits))

    return score


@pytest.fixture(scope="module")
def scorer():
    return weighted_scorer(np.random.default_rng(0).normal(size=(WINDOW, 4)))


def test_single_window_deltas_equal_rescoring_each_mutant(scorer):
    seq = random_dna(WINDOW, 1)
    ref, deltas = mutagenesis(seq, scorer, WINDOW)
    assert ref == pytest.approx(scorer([seq])[0])
    for j in range(WINDOW):
        for b, base in enumerate(BASES):
            mutant = seq[:j] + base + seq[j + 1 :]
            assert deltas[j, b] == pytest.approx(scorer([mutant])[0] - ref, abs=1e-12)
    assert np.all(deltas[np.arange(WINDOW), [BASES.index(b) for b in seq]] == 0)
    assert importance(seq, deltas) == pytest.approx(-deltas.sum(axis=1) / 3)


def test_long_region_delta_is_change_of_best_window(scorer):
    seq = random_dna(50, 2)
    ref, deltas = mutagenesis(seq, scorer, WINDOW, step=3)
    starts = [*range(0, 50 - WINDOW + 1, 3), 50 - WINDOW]  # the last window ends at the sequence end

    def best(s: str) -> float:
        return float(scorer([s[x : x + WINDOW] for x in starts]).max())

    assert ref == pytest.approx(best(seq))
    for j in (0, 7, 29, 49):
        for b, base in enumerate(BASES):
            assert deltas[j, b] == pytest.approx(best(seq[:j] + base + seq[j + 1 :]) - ref, abs=1e-12)


def test_batched_windows_equal_one_by_one(scorer):
    seqs = [random_dna(WINDOW, seed) for seed in range(3, 6)]
    refs, deltas = window_mutagenesis(seqs, scorer)
    for n, seq in enumerate(seqs):
        ref, single = mutagenesis(seq, scorer, WINDOW)
        assert refs[n] == pytest.approx(ref)
        np.testing.assert_allclose(deltas[n], single, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("chrX:10-30:+", "unknown contig 'chrX'"),
        ("chr1:90-130:+", "past the end of chr1 (100 bp)"),
        ("chr1:10-30:*", "strand must be + or -"),
        ("chr1:30-10:+", "start must be >= 1 and <= end"),
        ("chr1:0-10", "start must be >= 1"),
        ("chr1-10-30", "expected contig:start-end:strand"),
    ],
)
def test_region_validation_names_the_problem(text, problem):
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        parse_region(text, {"chr1": 100, "plasmid": 50})


def test_region_is_one_based_inclusive_and_default_plus():
    region = parse_region("my:contig:11-31", {"my:contig": 100})
    assert region == Region("my:contig", 10, 31, "+")
    assert str(region) == "my:contig:11-31:+"


def test_tss_windows_put_the_tss_at_the_offset_on_both_strands():
    plus = tss_region("c", 100, "+", 81, 60)
    assert plus.genome_position(60) == 100 and plus.length == 81
    minus = tss_region("c", 100, "-", 81, 60)
    assert minus.genome_position(60) == 100 and minus.length == 81


def test_minus_strand_rows_are_genome_coordinates_with_forward_alleles(tmp_path, scorer):
    genome = random_dna(60, 7)
    fasta = tmp_path / "g.fa"
    fasta.write_text(f">c\n{genome}\n")
    region = parse_region(f"c:11-{10 + WINDOW}:-", {"c": 60})
    oriented = region_bases(fasta, [region])[0]
    assert oriented == reverse_complement(genome[10 : 10 + WINDOW])
    result = run_ism("t", region, oriented, scorer, WINDOW)
    table = result.table()
    assert len(table) == 3 * WINDOW and set(table["strand"]) == {"-"}
    assert table["position"].between(11, 10 + WINDOW).all()
    for row in table.sample(12, random_state=0).itertuples():
        assert genome[row.position - 1] == row.ref  # forward-strand reference allele at the genome position
        mutated = genome[: row.position - 1] + row.alt + genome[row.position :]
        direct = scorer([reverse_complement(mutated[10 : 10 + WINDOW])])[0]
        assert row.score_alt == pytest.approx(direct, abs=1e-12)
        assert row.delta == pytest.approx(direct - row.score_ref, abs=1e-12)
    # the 5' end of a minus-strand region is its last forward base
    assert table.loc[table["offset"] == 0, "position"].unique().tolist() == [10 + WINDOW]
    png = tmp_path / "t.png"
    write_ism(result, tmp_path / "t.tsv", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(tmp_path / "t.tsv", sep="\t").shape == (3 * WINDOW, 9)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from genolm.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_classifier("cnn", PARAMS, KmerTokenizer(k=1).vocab_size, WINDOW).eval()
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_checkpoint(
        model, path, {"arch": "cnn", "params": PARAMS, "vocab": KmerTokenizer(k=1).to_dict(), "window_bp": WINDOW}
    )
    return path


def test_cli_region_and_sequence_end_to_end(tmp_path, checkpoint, capsys):
    from genolm.genome_scan import load_scan_model
    from genolm.scan import model_scorer

    genome = random_dna(80, 9)
    fasta = tmp_path / "g.fa"
    fasta.write_text(f">chrom\n{genome}\n")
    out = tmp_path / "out"
    assert main(["mutagenesis", "--checkpoint", str(checkpoint), "--fasta", str(fasta), "--region",
                 "chrom:5-30:-", "--step", "2", "-o", str(out), "--name", "r", "--device", "cpu"]) == 0  # fmt: skip
    table = pd.read_csv(out / "r.tsv", sep="\t")
    assert len(table) == 3 * 26 and (out / "r.png").stat().st_size > 0
    seq = genome[:WINDOW]
    assert main(["mutagenesis", "--checkpoint", str(checkpoint), "--sequence", seq, "-o", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    table = pd.read_csv(out / "ism.tsv", sep="\t")
    model, tokenizer, _, device = load_scan_model(checkpoint, "cpu")
    score = model_scorer(model, tokenizer, device)
    row = table.iloc[17]
    mutant = seq[: row.offset] + row.alt + seq[row.offset + 1 :]
    assert row.delta == pytest.approx(score([mutant])[0] - score([seq])[0], abs=1e-5)
    with pytest.raises(SystemExit):
        main(["mutagenesis", "--checkpoint", str(checkpoint), "--fasta", str(fasta), "--region", "chr2:1-30",
              "-o", str(out), "--device", "cpu"])  # fmt: skip
    assert "unknown contig 'chr2'" in capsys.readouterr().err
