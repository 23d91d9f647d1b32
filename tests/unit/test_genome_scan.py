from __future__ import annotations

import numpy as np
import pytest
import torch

from genolm import genome_scan
from genolm.genome_scan import calls_for_contig, score_contig
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier
from genolm.scan import model_scorer, scan_sequence

PROMOTER = {"kind": "promoter", "strand_specific": True, "scan": {"peak_distance": 50, "tss_offset": 60}}
IS = {"kind": "is", "strand_specific": False, "scan": {"merge_gap": 50, "min_windows": 1}}


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
