from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch
from test_checkpoint import trained_like  # the checkpoint tests' perturbation (tests/unit is on sys.path)

from genolm import genome_scan, scan_blocks
from genolm.annotations import read_gff3
from genolm.errors import ConfigError, InputFormatError
from genolm.formats import write_gff3
from genolm.genome_scan import calls_for_contig, score_contig
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier
from genolm.scan import Call, iter_windows, model_scorer, scan_sequence
from genolm.scan_blocks import contig_lengths, fetch_regions, iter_block_sequences, plan_blocks
from genolm.tir import find_tir

PROMOTER = {"kind": "promoter", "strand_specific": True, "scan": {"peak_distance": 50, "tss_offset": 60}}
IS = {"kind": "is", "strand_specific": False, "scan": {"merge_gap": 50, "min_windows": 1}}


def plain_dna(length: int, seed: int) -> str:
    return "".join(np.array(list("ACGT"))[np.random.default_rng(seed).integers(0, 4, length)])


def random_genome(length: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    seq = np.array(list("ACGT"))[rng.integers(0, 4, length)]
    seq[1000:1040] = "N"  # an assembly gap
    seq[2001] = "R"  # an IUPAC code
    return "".join(seq)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    params = {
        "embed_dim": 8,
        "channels": [16, 16],
        "kernel_sizes": [7, 5],
        "dilations": [1, 2],
        "dropout": 0.0,
    }
    return build_classifier("cnn", params, KmerTokenizer(k=1).vocab_size, 81).eval()


@pytest.mark.parametrize("step", [1, 7])
def test_one_pass_cnn_scan_equals_scoring_every_window(cnn, monkeypatch, step):
    # small chunks, so the chunk seams are crossed many times
    monkeypatch.setattr(genome_scan, "CHUNK_TOKENS", 997)
    tokenizer = KmerTokenizer(k=1)
    sequence = random_genome(5003)
    starts, plus, minus = score_contig(cnn, tokenizer, sequence, 81, step, 512, "cpu")
    ref_starts, ref_plus, ref_minus = scan_sequence(sequence, model_scorer(cnn, tokenizer, "cpu"), 81, step, 512)
    np.testing.assert_array_equal(starts, ref_starts)
    assert starts[-1] == 5003 - 81  # the tail window is aligned to the contig end
    np.testing.assert_allclose(plus, ref_plus, atol=1e-5)
    np.testing.assert_allclose(minus, ref_minus, atol=1e-5)
    assert not np.allclose(plus, minus)  # the strands really are scored separately


def test_one_pass_scan_halves_its_chunks_when_the_device_runs_out_of_memory(cnn, monkeypatch, caplog):
    """A GPU too small for a chunk: the scan retries with half-size chunks and gives the same scores."""
    tokenizer = KmerTokenizer(k=1)
    sequence = random_genome(4000)
    expected = score_contig(cnn, tokenizer, sequence, 81, 3, 512, "cpu")

    class SmallDevice:
        """The CNN on a device that holds at most 1,000 input tokens at once."""

        window_tokens = cnn.window_tokens

        def position_logits(self, chunk):
            if chunk.shape[1] > 1000:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return cnn.position_logits(chunk)

    with caplog.at_level("WARNING", logger="genolm"):
        starts, plus, minus = score_contig(SmallDevice(), tokenizer, sequence, 81, 3, 512, "cpu")
    assert "out of memory" in caplog.text
    np.testing.assert_array_equal(starts, expected[0])
    np.testing.assert_allclose(plus, expected[1], atol=1e-6)
    np.testing.assert_allclose(minus, expected[2], atol=1e-6)


def test_contig_shorter_than_the_window_has_no_windows(cnn):
    starts, plus, minus = score_contig(cnn, KmerTokenizer(k=1), "ACGT" * 10, 81, 1, 512, "cpu")
    assert starts.size == plus.size == minus.size == 0


def test_promoter_calls_are_tss_points_on_their_strand():
    starts = np.arange(0, 1000, 10)
    plus, minus = np.zeros(starts.size), np.zeros(starts.size)
    plus[10:13] = [0.6, 0.9, 0.7]  # best window starts at 110
    plus[20] = 0.7  # a second promoter 90 bp downstream keeps its own call: peaks are not merged
    minus[50] = 0.8  # window 500..581 read on the minus strand
    calls = calls_for_contig("chr", starts, plus, minus, 81, 0.5, PROMOTER)
    assert [(c.start, c.end, c.strand, c.kind) for c in calls] == [
        (170, 171, "+", "TSS"),
        (260, 261, "+", "TSS"),
        (520, 521, "-", "TSS"),
    ]
    assert calls[0].score == pytest.approx(0.9)


def test_is_calls_merge_both_strands_without_strand():
    starts = np.arange(0, 5000, 50)
    plus, minus = np.zeros(starts.size), np.zeros(starts.size)
    plus[20:24] = 0.9  # 1000..1550
    minus[25:28] = 0.8  # 1250..1750: within merge_gap, one element
    minus[60] = 0.7  # 3000..3400
    calls = calls_for_contig("chr", starts, plus, minus, 400, 0.5, IS)
    assert [(c.start, c.end, c.strand) for c in calls] == [(1000, 1750, "."), (3000, 3400, ".")]


def test_is_elements_need_min_windows():
    starts = np.arange(0, 5000, 50)
    plus, minus = np.zeros(starts.size), np.zeros(starts.size)
    plus[20:24] = 0.9  # four windows: an element
    minus[60] = 0.7  # one isolated window: dropped with min_windows=2
    task = {**IS, "scan": {**IS["scan"], "min_windows": 2}}
    calls = calls_for_contig("chr", starts, plus, minus, 400, 0.5, task)
    assert [(c.start, c.end, c.strand, c.n_windows) for c in calls] == [(1000, 1550, ".", 4)]


def test_models_without_a_one_pass_path_are_scanned_window_by_window():
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(k=3, stride=2)
    model = build_classifier("awd_lstm", {"emb_dim": 8, "hidden": 8, "layers": 1}, tokenizer.vocab_size, 0).eval()
    sequence = random_genome(2500)
    starts, plus, minus = score_contig(model, tokenizer, sequence, 100, 50, 8, "cpu")
    np.testing.assert_array_equal(starts, np.arange(0, 2401, 50))
    reference = model_scorer(model, tokenizer, "cpu")
    assert plus[3] == pytest.approx(reference([sequence[150:250]])[0])
    assert np.isfinite(plus).all() and np.isfinite(minus).all() and not np.allclose(plus, minus)


# --- whole genomes: files, parts, exactness, TIRs, evaluation -------------------------------------------------


def window_model(arch: str, tokenizer: KmerTokenizer, window_tokens: int):
    torch.manual_seed(1)
    params = {
        "cnn": {"embed_dim": 8, "channels": [8], "kernel_sizes": [5], "dilations": [1], "dropout": 0.0},
        "awd_lstm": {"emb_dim": 8, "hidden": 8, "layers": 2},
        # max_tokens below the window's 58 tokens: the classifier chunks each window internally
        "transformer": {"d_model": 16, "n_heads": 2, "layers": 1, "ff_dim": 16, "max_tokens": 24, "overlap": 4},
        "kmer_mlp": {"hidden": [8]},
    }[arch]
    model = build_classifier(arch, params, tokenizer.vocab_size, window_tokens).eval()
    return model if arch in ("cnn", "transformer") else Sharpened(model).eval()


class Sharpened(torch.nn.Module):
    """Logits of a small random model times 50, so that scores spread far beyond the test tolerance."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return 50 * self.model(tokens, lengths)


@pytest.mark.parametrize(
    ("arch", "k", "stride"),
    [("cnn", 1, 1), ("cnn", 3, 2), ("awd_lstm", 3, 2), ("transformer", 3, 1), ("kmer_mlp", 4, 1)],
)
def test_blockwise_scan_equals_scoring_each_window_alone(arch, k, stride, monkeypatch):
    """Every family, streamed in blocks (seams crossed many times), against a naive one-window-at-a-time scan."""
    monkeypatch.setattr(genome_scan, "CHUNK_TOKENS", 301)
    tokenizer = KmerTokenizer(k=k, stride=stride)
    window, step = 60, 7
    model = window_model(arch, tokenizer, tokenizer.n_tokens(window))
    sequence = random_genome(2600, seed=3)[700:]  # keeps the N run and the IUPAC code
    scorer = genome_scan.block_scorer(model, tokenizer, window, 16, "cpu")
    blocks = plan_blocks({"chr": len(sequence)}, window, step, block_bp=250)
    assert len(blocks) > 5
    got = [scorer(sequence[b.seq_start : b.seq_end], b.starts - b.seq_start, "chr") for b in blocks]
    plus = np.concatenate([g[0] for g in got])
    minus = np.concatenate([g[1] for g in got])
    starts = np.concatenate([b.starts for b in blocks])
    np.testing.assert_array_equal(starts, iter_windows(len(sequence), window, step))
    naive = model_scorer(model, tokenizer, "cpu", batch_size=1)
    rc = revcomp(sequence)
    n = len(sequence)
    expected_plus = np.concatenate([naive([sequence[s : s + window]]) for s in starts])
    expected_minus = np.concatenate([naive([rc[n - s - window : n - s]]) for s in starts])
    np.testing.assert_allclose(plus, expected_plus, atol=1e-5, rtol=0)
    np.testing.assert_allclose(minus, expected_minus, atol=1e-5, rtol=0)
    assert plus.std() > 1e-3 and not np.allclose(plus, minus)


def revcomp(sequence: str) -> str:
    return sequence.translate(str.maketrans("ACGTNR", "TGCANY"))[::-1]


def write_fasta_text(path: Path, records: dict[str, str], width: int = 60, gz: bool = False) -> Path:
    text = "".join(
        f">{name} description\n" + "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
        for name, seq in records.items()
    )
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def genome_files(tmp_path_factory):
    """A chromosome with an N run, IUPAC codes and soft-masked bases, a plasmid, and a contig shorter than the
    window, gzipped, plus a second file with another plasmid."""
    folder = tmp_path_factory.mktemp("genome")
    rng = np.random.default_rng(5)
    chromosome = list(random_genome(9000, seed=7))
    chromosome[5000:5400] = "N" * 400  # a long assembly gap: windows inside it are not scored
    chromosome[6000:6100] = [c.lower() for c in chromosome[6000:6100]]
    chromosome[7000] = "Y"
    plasmid = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 1500)])
    first = write_fasta_text(
        folder / "main.fa.gz", {"chr": "".join(chromosome), "plasmid1": plasmid, "tiny": "ACGTACGTAC"}, gz=True
    )
    second = write_fasta_text(folder / "extra.fa", {"plasmid2": plain_dna(900, seed=11)})
    return [first, second]


@pytest.fixture(scope="module")
def cnn_checkpoint(tmp_path_factory, cnn):
    from genolm.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    params = {"embed_dim": 8, "channels": [16, 16], "kernel_sizes": [7, 5], "dilations": [1, 2], "dropout": 0.0}
    save_checkpoint(
        cnn, path, {"arch": "cnn", "params": params, "vocab": KmerTokenizer(k=1).to_dict(), "window_bp": 81}
    )
    return path


@pytest.fixture(scope="module")
def threshold(genome_files, cnn):
    """A threshold that the best tenth of the random CNN's windows pass, so that there are calls to compare."""
    plus = score_contig(cnn, KmerTokenizer(k=1), read_chr(genome_files[0]), 81, 3, 8, "cpu")[1]
    return float(np.nanquantile(plus, 0.9))


def outputs_in(folder: Path) -> dict[str, Path]:
    names = {"bed": "calls.bed.gz", "gff": "calls.gff3.gz", "bedgraph": "scores.bedgraph.gz"}
    return {**{k: folder / v for k, v in names.items()}, "scores": folder / "scores.npz", "summary": folder / "s.tsv"}


def body_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line for line in handle if not line.startswith(("#", "track"))]


PROMOTER_SCAN = {**PROMOTER, "scan": {**PROMOTER["scan"], "step": 3}}


def test_multi_file_genome_scan_handles_gaps_iupac_short_contigs(genome_files, cnn_checkpoint, threshold, tmp_path):
    out = outputs_in(tmp_path)
    summary = genome_scan.scan_genome(
        genome_files, cnn_checkpoint, None, PROMOTER_SCAN, out, "g", "promoter", "cnn", threshold=threshold
    ).iloc[0]
    assert (summary["contigs"], summary["contigs_too_short"], summary["bp"]) == (4, 1, 9000 + 1500 + 10 + 900)
    with np.load(out["scores"]) as data:
        assert data["contigs"].tolist() == ["chr", "plasmid1", "tiny", "plasmid2"]
        starts, plus = data["starts_0"], data["plus_0"]
        assert data["starts_2"].size == 0 and data["starts_3"][-1] == 900 - 81
        in_gap = (starts >= 5000 - 40) & (starts + 81 <= 5400 + 40)  # more than half N
        assert np.isnan(plus[in_gap]).all() and np.isfinite(plus[~in_gap & (starts < 4900)]).all()
        assert summary["windows_unscored"] == int(np.isnan(data["plus_0"]).sum()) > 0
    # soft-masked and IUPAC windows are scored like their upper-case / unknown-token versions
    reference = score_contig(
        genome_scan_model(cnn_checkpoint), KmerTokenizer(k=1), read_chr(genome_files[0]), 81, 3, 8, "cpu"
    )
    np.testing.assert_allclose(plus[~in_gap], reference[1][~in_gap], atol=1e-6)
    for key in ("bed", "gff", "bedgraph"):
        with pysam.TabixFile(str(out[key])) as tabix:
            assert set(tabix.contigs) <= {"chr", "plasmid1", "plasmid2"}
    assert summary["calls"] == len(body_lines(out["bed"])) == len(body_lines(out["gff"])) > 0


def genome_scan_model(checkpoint):
    from genolm.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint, map_location="cpu")[0].eval()


def read_chr(path):
    from genolm.seqio import read_fasta

    return next(iter(read_fasta(path))).sequence


def test_scattered_scan_gathers_to_the_single_job_outputs(
    genome_files, cnn_checkpoint, threshold, tmp_path, monkeypatch
):
    monkeypatch.setattr(genome_scan, "CHUNK_TOKENS", 500)
    monkeypatch.setattr(scan_blocks, "BLOCK_BP", 1000)
    single = outputs_in(tmp_path / "single")
    genome_scan.scan_genome(
        genome_files, cnn_checkpoint, None, PROMOTER_SCAN, single, "g", "p", "cnn", threshold=threshold
    )
    parts = [tmp_path / f"part{i}.npz" for i in range(4)]
    for index, path in enumerate(parts):  # 4 parts: boundaries fall inside the chromosome and between contigs
        genome_scan.score_part(genome_files, cnn_checkpoint, path, index, len(parts), step=3, device="cpu")
    gathered = outputs_in(tmp_path / "gathered")
    genome_scan.scan_genome(
        genome_files, cnn_checkpoint, None, PROMOTER_SCAN, gathered, "g", "p", "cnn", threshold=threshold, parts=parts
    )
    with np.load(single["scores"]) as one, np.load(gathered["scores"]) as many:
        assert sorted(one.files) == sorted(many.files)
        for key in one.files:
            np.testing.assert_array_equal(one[key], many[key])
    for key in ("bed", "gff", "bedgraph"):
        assert body_lines(single[key]) == body_lines(gathered[key])
    assert len(body_lines(single["bed"])) > 10
    with pytest.raises(InputFormatError, match="scored windows"):
        genome_scan.scan_genome(
            genome_files, cnn_checkpoint, None, PROMOTER_SCAN, gathered, "g", "p", "cnn", parts=parts[:3]
        )


def test_genome_without_calls_gives_empty_indexed_outputs(genome_files, cnn_checkpoint, tmp_path):
    out = outputs_in(tmp_path)
    summary = genome_scan.scan_genome(genome_files, cnn_checkpoint, None, IS_SCAN, out, "g", "is", "cnn", threshold=2.0)
    assert summary.iloc[0]["calls"] == 0
    for key in ("bed", "gff"):
        assert body_lines(out[key]) == []
        with pysam.TabixFile(str(out[key])) as tabix:
            assert list(tabix.fetch("chr")) == [] if "chr" in tabix.contigs else True
    with gzip.open(out["gff"], "rt") as handle:
        assert handle.readline().startswith("##gff-version 3")


IS_SCAN = {"kind": "is", "strand_specific": False, "scan": {"step": 20, "merge_gap": 50, "min_windows": 1}}


# -----------------------------------------------------------------------------
# Seed ensembles (scan.seed_ensemble)

ENSEMBLE_PARAMS = {
    "cnn": {"embed_dim": 8, "channels": [16, 16], "kernel_sizes": [7, 5], "dilations": [1, 2], "dropout": 0.0},
    "kmer_mlp": {"hidden": [16, 8]},
}
ENSEMBLE_TASK = {"source": "demo", "kind": "promoter", "strand_specific": True, "split": {"method": "random"}}


def seed_checkpoint(folder: Path, arch: str, seed: int, *, k: int = 1, window: int = 81, task=None) -> Path:
    """A tiny classifier of one training seed, saved with what the pipeline records (window, vocabulary, task,
    seed). The CNN on 1-mers scans in one pass; the k-mer MLP window by window."""
    from genolm.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    tokenizer = KmerTokenizer(k=k)
    tokens = window - k + 1
    model = trained_like(build_classifier(arch, ENSEMBLE_PARAMS[arch], tokenizer.vocab_size, tokens))
    path = folder / f"seed{seed}" / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "arch": arch,
        "params": ENSEMBLE_PARAMS[arch],
        "vocab": tokenizer.to_dict(),
        "window_bp": window,
        "task": task or ENSEMBLE_TASK,
        "train": {"seed": seed},
    }
    save_checkpoint(model, path, meta)
    return path


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("arch", ["cnn", "kmer_mlp"])
def test_seed_ensemble_scan_is_the_mean_of_its_seeds_scans(genome_files, tmp_path, monkeypatch, arch):
    # several blocks per contig, averaged one at a time (the chunking of the scattered-scan test above)
    monkeypatch.setattr(genome_scan, "CHUNK_TOKENS", 500)
    monkeypatch.setattr(scan_blocks, "BLOCK_BP", 1000)
    seeds = [seed_checkpoint(tmp_path, arch, seed) for seed in (1, 2)]
    singles = []
    for index, path in enumerate(seeds):
        out = outputs_in(tmp_path / f"single{index}")
        genome_scan.scan_genome(genome_files, path, None, PROMOTER_SCAN, out, "g", "p", arch, threshold=0.5)
        singles.append(npz_arrays(out["scores"]))
    single_job = outputs_in(tmp_path / "ensemble")
    summary = genome_scan.scan_genome(
        genome_files, seeds, None, PROMOTER_SCAN, single_job, "g", "p", arch, threshold=0.5
    ).iloc[0]
    ensemble = npz_arrays(single_job["scores"])
    score_keys = [key for key in ensemble if key.startswith(("plus_", "minus_"))]
    assert len(score_keys) == 8
    for key in score_keys:
        mean = (singles[0][key].astype(np.float64) + singles[1][key]) / 2
        np.testing.assert_allclose(ensemble[key], mean, atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(ensemble[key]), np.isnan(singles[0][key]))
    assert not np.allclose(singles[0]["plus_0"], singles[1]["plus_0"], equal_nan=True)  # the seeds really differ
    assert ensemble["seeds"].tolist() == ["1", "2"]
    assert (summary["models_averaged"], summary["seeds"]) == (2, "1,2")
    with gzip.open(single_job["bed"], "rt") as handle:
        assert "#seeds: 1,2\n" in handle.readlines()
    # scattered: parts scored by both seeds gather to the single job's outputs
    parts = [tmp_path / f"part{i}.npz" for i in range(3)]
    for index, path in enumerate(parts):
        genome_scan.score_part(genome_files, seeds, path, index, len(parts), step=3, device="cpu")
    gathered = outputs_in(tmp_path / "gathered")
    genome_scan.scan_genome(
        genome_files, seeds, None, PROMOTER_SCAN, gathered, "g", "p", arch, threshold=0.5, parts=parts
    )
    gathered_scores = npz_arrays(gathered["scores"])
    assert sorted(gathered_scores) == sorted(ensemble)
    for key, value in gathered_scores.items():
        if key in score_keys:  # batched window-by-window models (k-mer MLP) may differ in the last float32 bit
            np.testing.assert_allclose(value, ensemble[key], atol=1e-6, equal_nan=True)
        else:
            np.testing.assert_array_equal(value, ensemble[key])

    def positions(path: Path) -> list[list[str]]:
        return [line.split("\t")[:3] + line.split("\t")[5:6] for line in body_lines(path)]

    assert positions(gathered["bed"]) == positions(single_job["bed"]) and positions(single_job["bed"])
    with pytest.raises(InputFormatError, match="other than the 1 this scan averages"):
        genome_scan.scan_genome(genome_files, seeds[:1], None, PROMOTER_SCAN, gathered, "g", "p", arch, parts=parts)


def test_a_one_seed_ensemble_is_the_plain_scan(genome_files, cnn_checkpoint, threshold, tmp_path):
    plain, one = outputs_in(tmp_path / "plain"), outputs_in(tmp_path / "one")
    args = (None, PROMOTER_SCAN)
    first = genome_scan.scan_genome(genome_files, cnn_checkpoint, *args, plain, "g", "p", "cnn", threshold=threshold)
    second = genome_scan.scan_genome(genome_files, [cnn_checkpoint], *args, one, "g", "p", "cnn", threshold=threshold)
    pd.testing.assert_frame_equal(
        first.drop(columns=["seconds", "bp_per_s"]), second.drop(columns=["seconds", "bp_per_s"])
    )
    assert first.iloc[0]["models_averaged"] == 1
    expected = npz_arrays(plain["scores"])
    got = npz_arrays(one["scores"])
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value)
    for key in ("bed", "gff", "bedgraph"):
        assert body_lines(one[key]) == body_lines(plain[key])
    scorer = genome_scan.block_scorer(genome_scan_model(cnn_checkpoint), KmerTokenizer(k=1), 81, 8, "cpu")
    assert genome_scan.ensemble_block_scorer([scorer]) is scorer


def test_seed_ensemble_scan_calls_at_the_ensemble_threshold(genome_files, tmp_path):
    from genolm.evaluate import evaluate_ensemble, threshold_from_metrics

    labels = {"valid": [1, 1, 0, 0], "test": [1, 0]}
    tables = []
    for seed, valid in ((1, [0.9, 0.6, 0.4, 0.1]), (2, [0.8, 0.7, 0.3, 0.2])):
        rows = [
            {"id": f"{split}{i}", "split": split, "label": label, "score": score}
            for split, scores in (("valid", valid), ("test", [0.7, 0.2]))
            for i, (label, score) in enumerate(zip(labels[split], scores, strict=True))
        ]
        tables.append(tmp_path / f"seed{seed}.tsv")
        pd.DataFrame(rows).to_csv(tables[-1], sep="\t", index=False)
    metrics = tmp_path / "ensemble_metrics.tsv"
    evaluate_ensemble(tables, tmp_path / "ensemble_predictions.tsv", metrics, "p", "cnn", seed=1, bootstrap=0)
    chosen = threshold_from_metrics(metrics)
    seeds = [seed_checkpoint(tmp_path, "cnn", seed) for seed in (1, 2)]
    out = outputs_in(tmp_path / "scan")
    summary = genome_scan.scan_genome(
        genome_files, seeds, metrics, PROMOTER_SCAN, out, "g", "p", "cnn", threshold=0.99
    ).iloc[0]
    assert summary["threshold"] == pytest.approx(chosen, abs=1e-6) and chosen != pytest.approx(0.99)
    scores = npz_arrays(out["scores"])
    assert float(scores["threshold"]) == pytest.approx(chosen)
    expected = sum(
        len(calls_for_contig(name, scores[f"starts_{i}"], scores[f"plus_{i}"], scores[f"minus_{i}"], 81, chosen,
                             PROMOTER_SCAN))
        for i, name in enumerate(scores["contigs"].tolist())
    )  # fmt: skip
    assert summary["calls"] == expected


@pytest.mark.parametrize(
    ("other", "what"),
    [
        ({"window": 61}, "window"),
        ({"k": 2}, "vocabulary"),
        ({"task": {**ENSEMBLE_TASK, "kind": "is", "strand_specific": False}}, "task"),
    ],
)
def test_seed_ensemble_of_unlike_checkpoints_is_refused_naming_them(genome_files, tmp_path, other, what):
    first = seed_checkpoint(tmp_path / "a", "cnn", 1)
    second = seed_checkpoint(tmp_path / "b", "cnn", 2, **other)
    with pytest.raises(InputFormatError, match=f"{second}.* and {first} differ in {what}"):
        genome_scan.ensemble_members([first, second])
    out = outputs_in(tmp_path / "scan")
    with pytest.raises(InputFormatError, match=f"differ in {what}"):
        genome_scan.scan_genome(genome_files, [first, second], None, PROMOTER_SCAN, out, "g", "p", "cnn")
    with pytest.raises(InputFormatError, match=f"differ in {what}"):
        genome_scan.score_part(genome_files, [first, second], tmp_path / "part.npz", 0, 1, step=3, device="cpu")
    assert not out["summary"].exists()


def test_duplicate_contig_across_files_names_file_and_record(tmp_path):
    first = write_fasta_text(tmp_path / "a.fa", {"chr": "ACGT" * 50, "p1": "ACGT" * 30})
    second = write_fasta_text(tmp_path / "b.fa.gz", {"p1": "TTGCA" * 30}, gz=True)  # same name, other file
    with pytest.raises(InputFormatError, match=r"b\.fa\.gz: record 'p1'.*a\.fa"):
        contig_lengths([first, second])
    same = write_fasta_text(tmp_path / "c.fa", {"x": "ACGT" * 10, "y": "A" * 10, "x ": "C" * 10})
    with pytest.raises(InputFormatError, match=r"c\.fa: record 'x'.*duplicate"):
        contig_lengths(same)


def test_regions_stream_with_bounded_memory_and_match_indexed_fetch(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_blocks, "_READ_CHUNK_BP", 1000)
    records = {"a": random_genome(5000, seed=1), "b": random_genome(3000, seed=2).lower()}
    plain = write_fasta_text(tmp_path / "g.fa", records)
    regions = [("a", 0, 81), ("a", 50, 2100), ("a", 2000, 5000), ("b", 10, 20), ("b", 2990, 3000)]
    streamed = list(fetch_regions(plain, regions))
    assert [(c, s, e) for c, s, e, _ in streamed] == regions
    assert all(bases == records[c][s:e].upper() for c, s, e, bases in streamed)
    pysam.faidx(str(plain))
    indexed = list(fetch_regions(plain, regions))
    assert indexed == streamed
    # memory: a 4 Mbp contig read block by block holds about one block and a read chunk, never the contig
    monkeypatch.setattr(scan_blocks, "_READ_CHUNK_BP", 1 << 16)
    big = write_fasta_text(tmp_path / "big.fa.gz", {"big": random_genome(4_000_000, seed=3)}, gz=True)
    blocks = plan_blocks({"big": 4_000_000}, 81, 1, block_bp=100_000)
    tracemalloc.start()
    total = sum(len(bases) for _, bases in iter_block_sequences(big, blocks))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == 4_000_000 + 80 * (len(blocks) - 1)
    assert peak < 2_500_000  # bytes; the contig alone is 4 MB


def test_plan_blocks_parts_own_every_window_once():
    lengths = {"c1": 1000, "short": 50, "c2": 333}
    windows = {name: iter_windows(n, 81, 7) for name, n in lengths.items()}
    for parts in (1, 2, 5):
        owned = [b for part in range(parts) for b in plan_blocks(lengths, 81, 7, part=part, parts=parts, block_bp=100)]
        for name, starts in windows.items():
            joined = [b.starts for b in owned if b.contig == name]
            np.testing.assert_array_equal(np.concatenate(joined) if joined else [], starts)
        assert all(b.seq_end - b.seq_start <= 100 + 81 for b in owned)
    with pytest.raises(ConfigError):
        plan_blocks(lengths, 81, 7, part=2, parts=2)


def planted_is(seed: int = 4) -> tuple[str, int, int]:
    rng = np.random.default_rng(seed)
    bases = np.array(list("ACGT"))
    left_ir = "".join(bases[rng.integers(0, 4, 24)])
    right_ir = list(revcomp(left_ir))
    right_ir[7] = {"A": "C", "C": "G", "G": "T", "T": "A"}[right_ir[7]]  # one mismatch: identity 23/24
    element = left_ir + "".join(bases[rng.integers(0, 4, 1300)]) + "".join(right_ir)
    # the bases just outside the element do not pair (A against A), so the repeats end where they were planted
    flank = "".join(bases[rng.integers(0, 4, 1996)]) + "AAAA"
    genome = flank + element + "AAAA" + "".join(bases[rng.integers(0, 4, 1996)])
    return genome, 2000, 2000 + len(element)


def test_tir_search_finds_planted_terminal_inverted_repeats():
    genome, start, end = planted_is()
    tir = find_tir(genome[1900:2150], 1900, genome[end - 120 : end + 100], end - 120)
    assert (tir.left_start, tir.left_end, tir.right_start, tir.right_end) == (start, start + 24, end - 24, end)
    assert tir.matches == 23 and tir.identity == pytest.approx(23 / 24)
    rng = np.random.default_rng(0)
    unrelated = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 1000)])
    assert find_tir(unrelated[:250], 0, unrelated[750:], 750) is None


def test_is_calls_move_to_tirs_and_record_them_in_gff(tmp_path):
    genome, start, end = planted_is()
    fasta = write_fasta_text(tmp_path / "is.fa", {"chr": genome, "other": random_genome(3000, seed=9)})
    lengths = contig_lengths(fasta)
    model_call = Call("chr", start + 90, end - 70, ".", 0.9, start + 90, "insertion_sequence", 5, 400)
    no_tir = Call("other", 1000, 2200, ".", 0.8, 1000, "insertion_sequence", 3, 400)
    refined = genome_scan.refine_is_calls([model_call, no_tir], fasta, lengths, {"tir_flank": 150})
    assert [(c.contig, c.start, c.end) for c in refined] == [("chr", start, end), ("other", 1000, 2200)]
    attributes = dict(refined[0].attributes)
    assert attributes["tir_left"] == f"{start + 1}-{start + 24}" and attributes["tir_identity"] == "0.958"
    assert attributes["model_bounds"] == f"{start + 91}-{end - 70}"
    assert genome_scan.refine_is_calls([model_call], fasta, lengths, {"tir_flank": 0}) == [model_call]
    gff = tmp_path / "calls.gff3.gz"
    write_gff3(refined, gff, provenance={"model": "x"}, sequence_lengths=lengths, id_prefix="is_")
    rows = read_gff3(gff)
    assert rows.loc[0, "attributes"]["tir_right"] == f"{end - 23}-{end}"
    assert (rows.loc[0, "start"], rows.loc[0, "end"]) == (start, end)
    assert "tir_left" not in rows.loc[1, "attributes"]


def test_window_labels_and_average_precision_match_sklearn():
    from sklearn.metrics import average_precision_score

    starts = np.arange(0, 200)
    plus = genome_scan.window_labels(starts, [100], "+", 81, 60, 2)
    assert np.flatnonzero(plus).tolist() == [38, 39, 40, 41, 42]  # windows whose TSS position 60 is 98..102
    minus = genome_scan.window_labels(starts, [100], "-", 81, 60, 0)
    assert np.flatnonzero(minus).tolist() == [80]  # minus: s + 81 - 1 - 60 == 100
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(500), 2)  # ties
    labels = rng.random(500) < 0.2
    assert genome_scan.average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def _one_contig_scores(path, plus, minus, window=81):
    """A scan's scores.npz for one contig `chr`, windows at every start from 0."""
    starts = np.arange(len(plus))
    np.savez(path, contigs=np.array(["chr"]), window=window, step=1, starts_0=starts, plus_0=plus, minus_0=minus)


def test_evaluate_scan_reports_window_auprc_and_is_fdr(tmp_path):
    truth = tmp_path / "truth.gff3"
    truth.write_text(
        "##gff-version 3\n"
        "chr\tx\tpromoter\t100\t161\t.\t+\t.\tID=p1;tss=160\n"
        "chr\tx\tinsertion_sequence\t1001\t2000\t.\t.\t.\tID=is1\n"
    )
    plus = np.zeros(400, np.float32)
    plus[100] = 0.9  # the window whose TSS position (100 + 60) is the true TSS
    _one_contig_scores(tmp_path / "scores.npz", plus, np.zeros(400, np.float32))
    calls = tmp_path / "calls.gff3.gz"
    lengths = {"chr": 5000}
    point = Call("chr", 160, 161, "+", 0.9, 160, "TSS")
    write_gff3([point], calls, provenance={}, sequence_lengths=lengths, id_prefix="p_")
    task = {"kind": "promoter", "scan": {"point_tolerance": 20, "tss_offset": 60, "window_tolerance": 0}}
    table = genome_scan.evaluate_scan(calls, truth, task, tmp_path / "eval.tsv", scores=tmp_path / "scores.npz")
    metrics = dict(zip(table["metric"], table["value"], strict=True))
    assert metrics["window_auprc"] == 1.0 and metrics["recall"] == 1.0 and metrics["windows"] == 800
    elements = [
        Call("chr", 1000, 2000, ".", 0.9, 1000, "insertion_sequence"),
        Call("chr", 3000, 3400, ".", 0.9, 3000, "insertion_sequence"),
    ]
    write_gff3(elements, calls, provenance={}, sequence_lengths=lengths, id_prefix="is_")
    table = genome_scan.evaluate_scan(calls, truth, {"kind": "is", "scan": {"min_overlap": 0.5}}, tmp_path / "e.tsv")
    metrics = dict(zip(table["metric"], table["value"], strict=True))
    assert (metrics["recall"], metrics["precision"], metrics["fdr"]) == (1.0, 0.5, 0.5)


def test_evaluate_scan_of_a_region_split_task_counts_the_held_out_stretch_only(tmp_path):
    # Two TSSs: one in the training stretch [0, 300) scored perfectly, one held out [300, 600) scored badly.
    truth = tmp_path / "truth.gff3"
    truth.write_text(
        "##gff-version 3\n"
        "chr\tx\tpromoter\t100\t161\t.\t+\t.\tID=p1;tss=160\n"
        "chr\tx\tpromoter\t400\t461\t.\t+\t.\tID=p2;tss=460\n"
    )
    plus = np.full(520, 0.1, np.float32)
    plus[100] = 0.9  # p1's window: the model saw it in training
    plus[200] = 0.8  # a false positive in training territory
    plus[450] = 0.5  # a held-out false positive that outranks p2's window
    plus[400] = 0.4
    _one_contig_scores(tmp_path / "scores.npz", plus, np.full(520, np.nan, np.float32))
    calls = tmp_path / "calls.gff3.gz"
    points = [Call("chr", 160, 161, "+", 0.9, 160, "TSS"), Call("chr", 510, 511, "+", 0.5, 510, "TSS")]
    write_gff3(points, calls, provenance={}, sequence_lengths={"chr": 700}, id_prefix="p_")
    task = {"kind": "promoter", "scan": {"point_tolerance": 20, "tss_offset": 60, "window_tolerance": 0}}
    heldout = genome_scan.HeldOut((("chr", 300, 700),))
    table = genome_scan.evaluate_scan(
        calls, truth, task, tmp_path / "e.tsv", scores=tmp_path / "scores.npz", heldout=heldout
    )
    metrics = dict(zip(table["metric"], table["value"], strict=True))
    # windows whose TSS position (start + 60) lies in [300, 700): starts 240..519
    assert metrics["windows"] == 280 and metrics["n_truth"] == 1 and metrics["n_calls"] == 1
    assert metrics["window_auprc"] == 0.5 and metrics["recall"] == 0.0
    assert "held out: only chr:301-700" in metrics["criterion"]
    whole = genome_scan.evaluate_scan(calls, truth, task, tmp_path / "w.tsv", scores=tmp_path / "scores.npz")
    assert dict(zip(whole["metric"], whole["value"], strict=True))["n_truth"] == 2
    # another contig (a plasmid the model never saw) is evaluated whole
    assert genome_scan.HeldOut((("chr", 300, 700),)).keep("plasmid", np.array([5, 50])).all()


def test_held_out_stretches_come_from_the_split_record(tmp_path):
    from genolm.sources.splits import region_bounds, split_by_region, write_split_record

    regions = region_bounds({"chr": 1000, "p": 10}, [0.6, 0.1, 0.3])
    assert regions[:3] == [("chr", 0, 600, "train"), ("chr", 600, 700, "valid"), ("chr", 700, 1000, "test")]
    table = pd.DataFrame({"contig": ["chr"] * 3, "start": [0, 590, 750], "end": [81, 671, 831]})
    assert split_by_region(table, regions).tolist() == ["train", None, "test"]  # the middle one crosses 600
    write_split_record(
        tmp_path / "s.tsv", method="region", seed=1, params={"regions": regions}, assignments=pd.Series({"a": "train"})
    )
    held = genome_scan.HeldOut.from_split_record(tmp_path / "s.tsv")
    assert held.regions == (("chr", 700, 1000), ("p", 7, 10))
    assert genome_scan.HeldOut.from_split_record(None).regions == ()
