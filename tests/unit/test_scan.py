"""genolm.scan: window coordinates, two-strand scans with oracle scorers, calling and evaluation."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from genolm.errors import ConfigError, GenolmError, InputFormatError
from genolm.scan import (
    Call,
    ScanConfig,
    call_elements,
    calls_from_scan,
    evaluate_calls,
    evaluate_points,
    iter_windows,
    model_scorer,
    peak_points,
    scan_contigs,
    scan_sequence,
)

_COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def random_dna(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


def plant(genome: str, start: int, element: str, strand: str) -> str:
    """Put `element` (given 5'->3' on `strand`) at forward [start, start + len)."""
    forward = element if strand == "+" else revcomp(element)
    return genome[:start] + forward + genome[start + len(forward) :]


def exact_oracle(elements: list[str]):
    wanted = set(elements)

    def score(windows: list[str]) -> np.ndarray:
        return np.array([1.0 if w in wanted else 0.0 for w in windows])

    return score


def motif_oracle(elements: list[str]):
    def score(windows: list[str]) -> np.ndarray:
        return np.array([1.0 if any(e in w for e in elements) else 0.0 for w in windows])

    return score


# --- windows ---


@pytest.mark.parametrize(
    ("length", "window", "step", "expected"),
    [
        (10, 4, 3, [0, 3, 6]),  # 6 + 4 == 10: already ends at the contig end, no extra window
        (10, 4, 2, [0, 2, 4, 6]),
        (11, 4, 3, [0, 3, 6, 7]),  # tail window aligned to the end
        (4, 4, 5, [0]),
        (9, 4, 100, [0, 5]),
        (3, 4, 1, []),  # shorter than the window
        (0, 4, 1, []),
    ],
)
def test_iter_windows_exact(length, window, step, expected):
    assert iter_windows(length, window, step).tolist() == expected


def test_iter_windows_cover_every_base_without_duplicates():
    for length in range(1, 60):
        for window in range(1, 12):
            for step in range(1, 14):
                starts = iter_windows(length, window, step)
                if length < window:
                    assert starts.size == 0
                    continue
                assert starts[0] == 0 and starts[-1] == length - window
                assert np.all(np.diff(starts) > 0)
                if step <= window:
                    covered = np.zeros(length, bool)
                    for s in starts:
                        covered[s : s + window] = True
                    assert covered.all()


def test_iter_windows_rejects_bad_parameters():
    with pytest.raises(ConfigError):
        iter_windows(100, 0, 1)
    with pytest.raises(ConfigError):
        iter_windows(100, 10, 0)


# --- oracle genome scans ---


def test_minus_strand_window_is_reverse_complement_of_forward_window():
    seq = "AACGTTTGCANNGT"
    seen: dict[str, list[str]] = {"calls": []}

    def scorer(windows: list[str]) -> np.ndarray:
        seen["calls"].extend(windows)
        return np.zeros(len(windows))

    starts, _, _ = scan_sequence(seq, scorer, window=5, step=4, batch_size=100)
    assert starts.tolist() == [0, 4, 8, 9]
    plus = [seq[s : s + 5] for s in starts]
    minus = [revcomp(seq[s : s + 5]) for s in starts]
    assert seen["calls"] == plus + minus


@pytest.fixture(scope="module")
def planted_genome():
    rng = np.random.default_rng(42)
    genome = random_dna(rng, 20_000)
    elements = [random_dna(rng, 50) for _ in range(6)]
    sites = [(1_000, "+"), (4_321, "-"), (7_777, "+"), (12_000, "-"), (15_555, "-"), (19_950, "+")]
    for element, (start, strand) in zip(elements, sites, strict=True):
        genome = plant(genome, start, element, strand)
    return genome, elements, sites


def test_exact_oracle_calls_come_back_at_planted_coordinates(planted_genome):
    genome, elements, sites = planted_genome
    batches: list[int] = []
    oracle = exact_oracle(elements)

    def scorer(windows):
        batches.append(len(windows))
        return oracle(windows)

    starts, plus, minus = scan_sequence(genome, scorer, window=50, step=1, batch_size=4096)
    assert starts.size == 20_000 - 50 + 1 and max(batches) <= 4096
    calls = [
        *call_elements("chr", starts, plus, "+", 50, 0.5, 0, "element"),
        *call_elements("chr", starts, minus, "-", 50, 0.5, 0, "element"),
    ]
    got = sorted((c.start, c.end, c.strand) for c in calls)
    assert got == sorted((s, s + 50, strand) for s, strand in sites)
    assert all(c.peak == c.start and c.score == 1.0 and c.n_windows == 1 for c in calls)


def test_motif_oracle_with_step_merges_windows_that_cover_the_element(planted_genome):
    genome, elements, sites = planted_genome
    motifs = [e[:20] for e in elements]  # motif = first 20 bases of each element, in its own orientation
    cfg = ScanConfig(window=100, step=7, threshold=0.5, batch_size=256)
    starts, plus, minus = scan_sequence(genome, motif_oracle(motifs), cfg.window, cfg.step, cfg.batch_size)
    scan_calls = {
        "+": call_elements("chr", starts, plus, "+", cfg.window, cfg.threshold),
        "-": call_elements("chr", starts, minus, "-", cfg.window, cfg.threshold),
    }
    assert sum(len(v) for v in scan_calls.values()) == len(sites)
    for start, strand in sites:
        # Forward span of the motif: first 20 bases on "+", last 20 forward bases of the element on "-".
        m0 = start if strand == "+" else start + 30
        (call,) = [c for c in scan_calls[strand] if c.start <= m0 and c.end >= m0 + 20]
        containing = [s for s in starts if s <= m0 and s + 100 >= m0 + 20]
        assert (call.start, call.end) == (containing[0], containing[-1] + 100)
        assert call.n_windows == len(containing)


def test_element_at_contig_tail_found_when_step_does_not_divide_length():
    rng = np.random.default_rng(7)
    element = random_dna(rng, 50)
    genome = plant(random_dna(rng, 1_003), 953, element, "-")  # ends exactly at the contig end
    starts, plus, minus = scan_sequence(genome, exact_oracle([element]), window=50, step=7, batch_size=64)
    assert (1_003 - 50) % 7 != 0 and starts[-1] == 953
    (call,) = call_elements("tail", starts, minus, "-", 50, 0.5)
    assert (call.start, call.end, call.strand) == (953, 1_003, "-")
    assert not call_elements("tail", starts, plus, "+", 50, 0.5)


def test_contig_shorter_than_window_is_skipped_and_logged(caplog):
    called = []
    starts, plus, minus = scan_sequence("ACGT", lambda w: called.append(w) or np.zeros(len(w)), 10, 1)
    assert starts.size == plus.size == minus.size == 0 and not called
    cfg = ScanConfig(window=10, step=5, threshold=0.5)
    with caplog.at_level(logging.WARNING, logger="genolm.scan"):
        scans = list(scan_contigs({"tiny": "ACGTACG", "ok": "A" * 30}, lambda w: np.zeros(len(w)), cfg))
    assert [s.contig for s in scans] == ["ok"]
    assert "tiny" in caplog.text and "shorter" in caplog.text


def test_n_rich_sequence_windows_over_limit_are_not_scored():
    rng = np.random.default_rng(3)
    element = random_dna(rng, 40)
    genome = random_dna(rng, 1_000) + "N" * 500 + random_dna(rng, 1_000)
    genome = plant(genome, 1_500, element, "+")  # starts right where the N block ends
    oracle = exact_oracle([element])

    def scorer(windows):
        assert all(w.count("N") <= 20 for w in windows)
        return oracle(windows)

    starts, plus, minus = scan_sequence(genome, scorer, 40, 1, 512, max_n_fraction=0.5)
    inside_n = (starts >= 1_000) & (starts + 40 <= 1_500)
    assert np.isnan(plus[inside_n]).all() and np.isnan(minus[inside_n]).all()
    assert np.isfinite(plus[~inside_n & ((starts < 980) | (starts > 1_480))]).all()
    (call,) = call_elements("n", starts, plus, "+", 40, 0.5)
    assert (call.start, call.end) == (1_500, 1_540)
    # Default: every window is scored, N or not (the tokenizer maps N to <unk>).
    _, plus_all, _ = scan_sequence(genome, oracle, 40, 1, 512)
    assert np.isfinite(plus_all).all()


def test_lowercase_soft_masked_input_is_scored_upper_case():
    rng = np.random.default_rng(9)
    element = random_dna(rng, 30)
    genome = plant(random_dna(rng, 300), 100, element, "-").lower()
    starts, _, minus = scan_sequence(genome, exact_oracle([element]), 30, 1, 64)
    (call,) = call_elements("c", starts, minus, "-", 30, 0.5)
    assert (call.start, call.end) == (100, 130)


def test_multiple_contigs_never_joined():
    rng = np.random.default_rng(5)
    element = random_dna(rng, 60)
    # The element is split across the junction of c1 and c2: no call may appear if contigs stay separate.
    c1 = random_dna(rng, 2_000) + element[:30]
    c2 = element[30:] + random_dna(rng, 2_000)
    c3 = plant(random_dna(rng, 1_500), 700, element, "-")
    cfg = ScanConfig(window=60, step=1, threshold=0.5, batch_size=1_000)
    calls = []
    for scan in scan_contigs([("c1", c1), ("c2", c2), ("short", "ACGT"), ("c3", c3)], exact_oracle([element]), cfg):
        assert scan.length == {"c1": 2_030, "c2": 2_030, "c3": 1_500}[scan.contig]
        calls += calls_from_scan(scan, cfg, "insertion_sequence")
    assert [(c.contig, c.start, c.end, c.strand, c.kind) for c in calls] == [
        ("c3", 700, 760, "-", "insertion_sequence")
    ]


def test_scorer_returning_wrong_length_raises():
    with pytest.raises(GenolmError, match="chrX"):
        scan_sequence("ACGT" * 10, lambda w: np.zeros(len(w) + 1), 8, 4, 16, name="chrX")
    with pytest.raises(GenolmError, match="non-finite"):
        scan_sequence("ACGT" * 10, lambda w: np.full(len(w), np.nan), 8, 4, 16)


# --- calling ---


def test_call_elements_merging_by_hand():
    starts = np.array([0, 10, 20, 30, 40, 50])
    scores = np.array([0.1, 0.9, 0.95, 0.2, 0.8, 0.1])
    calls = call_elements("c", starts, scores, "+", 10, 0.5, 0, "promoter")
    assert calls == [
        Call("c", 10, 30, "+", 0.95, 20, "promoter", n_windows=2, window=10),  # touching windows merge
        Call("c", 40, 50, "+", 0.8, 40, "promoter", n_windows=1, window=10),
    ]
    (merged,) = call_elements("c", starts, scores, "+", 10, 0.5, merge_gap=10, kind="promoter")
    assert (merged.start, merged.end, merged.score, merged.peak, merged.n_windows) == (10, 50, 0.95, 20, 3)
    assert call_elements("c", starts, scores, "+", 10, 0.5, merge_gap=9)[1].start == 40
    (long_only,) = call_elements("c", starts, scores, "-", 10, 0.5, min_windows=2)
    assert (long_only.start, long_only.end, long_only.strand) == (10, 30, "-")


def test_call_elements_threshold_inclusive_ties_leftmost_and_nan_ignored():
    starts = np.array([0, 5, 10, 15])
    scores = np.array([0.5, 0.7, 0.7, np.nan])
    (call,) = call_elements("c", starts, scores, "+", 8, 0.5)
    assert (call.start, call.end, call.peak, call.score) == (0, 18, 5, 0.7)
    assert call_elements("c", starts, scores, "+", 8, 0.71) == []
    with pytest.raises(InputFormatError, match="strand"):
        call_elements("c", starts, scores, ".", 8, 0.5)


def test_peak_points_strand_aware_offsets():
    calls = [
        Call("c", 100, 200, "+", 0.9, 110, "promoter", window=81),
        Call("c", 300, 400, "-", 0.8, 310, "promoter", window=81),
    ]
    p_plus, p_minus = peak_points(calls, window=81, offset=60)
    assert (p_plus.start, p_plus.end, p_plus.peak, p_plus.window) == (170, 171, 170, 0)
    assert (p_minus.start, p_minus.end) == (310 + 80 - 60, 311 + 80 - 60)
    with pytest.raises(ConfigError):
        peak_points(calls, window=81, offset=81)


def test_peak_points_recover_planted_tss_on_both_strands():
    rng = np.random.default_rng(21)
    promoters = [random_dna(rng, 81) for _ in range(2)]
    genome = plant(random_dna(rng, 3_000), 500, promoters[0], "+")
    genome = plant(genome, 2_000, promoters[1], "-")
    starts, plus, minus = scan_sequence(genome, exact_oracle(promoters), 81, 1, 1_024)
    calls = call_elements("c", starts, plus, "+", 81, 0.5) + call_elements("c", starts, minus, "-", 81, 0.5)
    points = {p.strand: p.start for p in peak_points(calls, 81, 60)}
    assert points == {"+": 560, "-": 2_000 + 20}
    # The base at the point is the TSS base of the oriented window (complemented on the minus strand).
    assert genome[points["+"]] == promoters[0][60]
    assert genome[points["-"]] == revcomp(promoters[1][60])


# --- evaluation ---


def test_evaluate_calls_reciprocal_overlap_by_hand():
    truth = [("c", 100, 200, "+"), ("c", 300, 400, "-"), ("c", 1_000, 1_100, "+")]
    calls = [
        Call("c", 110, 210, "+", 0.9, 110, "x"),  # 90/100 both ways: match
        Call("c", 150, 260, "+", 0.9, 150, "x"),  # 50/110 of the call < 0.5
        Call("c", 300, 400, "+", 0.9, 300, "x"),  # perfect overlap, wrong strand
        Call("c", 1_000, 1_300, "+", 0.9, 1_000, "x"),  # 100/300 of the call < 0.5
        Call("d", 100, 200, "+", 0.9, 100, "x"),  # other contig
    ]
    m = evaluate_calls(calls, truth, 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["n_calls"], m["n_truth"]) == (1, 4, 2, 5, 3)
    assert m["precision"] == pytest.approx(1 / 5)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 5) * (1 / 3) / (1 / 5 + 1 / 3))
    assert evaluate_calls(calls, truth, 0.5, match_strand=False)["tp"] == 2
    assert evaluate_calls(calls, truth, 0.3)["tp"] == 2  # the 300-bp call now qualifies


def test_evaluate_calls_one_to_one_greedy_by_overlap():
    truth = [("c", 0, 100, "+"), ("c", 100, 200, "+")]
    calls = [Call("c", 20, 160, "+", 1.0, 20, "x"), Call("c", 90, 190, "+", 1.0, 90, "x")]
    # Overlaps: call0-A 80, call0-B 60, call1-B 90. Greedy: call1-B, then call0-A.
    m = evaluate_calls(calls, truth, 0.4)
    assert m["tp"] == 2
    duplicates = [Call("c", 0, 100, "+", 1.0, 0, "x"), Call("c", 5, 100, "+", 1.0, 5, "x")]
    m = evaluate_calls(duplicates, truth[:1], 0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)


def test_evaluate_calls_empty_inputs_and_objects_as_truth():
    class Feature:
        def __init__(self, contig, start, end, strand):
            self.contig, self.start, self.end, self.strand = contig, start, end, strand

    m = evaluate_calls([], [Feature("c", 0, 10, "+")])
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    m = evaluate_calls([Call("c", 0, 10, "+", 1.0, 0, "x")], [])
    assert m["precision"] == 0.0 and math.isnan(m["recall"]) and m["f1"] == 0.0
    assert evaluate_calls([Call("c", 0, 10, "+", 1.0, 0, "x")], [Feature("c", 2, 12, "+")])["tp"] == 1


def test_evaluate_points_tolerance_by_hand():
    calls = [
        Call("c", 100, 101, "+", 0.9, 100, "tss"),
        Call("c", 205, 206, "+", 0.9, 205, "tss"),
        Call("c", 300, 301, "-", 0.9, 300, "tss"),
    ]
    truth = [("c", 103, "+"), ("c", 200, "+"), ("c", 210, "+"), ("c", 300, "+")]
    m = evaluate_points(calls, truth, tolerance=5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["median_abs_distance"] == 4.0  # distances 3 and 5
    assert evaluate_points(calls, truth, tolerance=2)["tp"] == 0
    assert evaluate_points(calls, truth, tolerance=0, match_strand=False)["tp"] == 1
    with pytest.raises(InputFormatError, match="1-bp"):
        evaluate_points([Call("c", 0, 10, "+", 1.0, 0, "x")], truth, 5)


def test_scan_config_validation():
    assert ScanConfig(window=81, step=1, threshold=0.5).batch_size == 512
    with pytest.raises(ConfigError, match="step"):
        ScanConfig(window=81, step=0, threshold=0.5)
    with pytest.raises(ConfigError, match="merge_gap"):
        ScanConfig(window=81, step=1, threshold=0.5, merge_gap=-1)


# --- model scorer ---


def test_model_scorer_batches_and_sigmoid():
    torch = pytest.importorskip("torch")

    class CountA(torch.nn.Module):
        """Logit = number of A tokens - 2, ignoring padding."""

        def __init__(self) -> None:
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))
            self.calls = 0

        def forward(self, tokens, lengths):
            self.calls += 1
            assert tokens.dtype == torch.long and lengths.shape == (tokens.shape[0],)
            return (tokens == 1).sum(dim=1).float() - 2.0 + self.dummy

    class Tokenizer:
        def encode_batch(self, seqs):
            width = max(len(s) for s in seqs)
            tokens = np.zeros((len(seqs), width), dtype=np.int64)
            for i, s in enumerate(seqs):
                tokens[i, : len(s)] = ["ACGT".index(b) + 1 for b in s]
            return tokens, np.array([len(s) for s in seqs])

    model = CountA()
    score = model_scorer(model, Tokenizer(), device="cpu", batch_size=3)
    windows = ["AAAA", "CCCC", "AACG", "A", "AAAAAA", "GT", "AAA"]
    got = score(windows)
    expected = 1 / (1 + np.exp(-(np.array([w.count("A") for w in windows]) - 2.0)))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert model.calls == 3 and not model.training and got.dtype == np.float64
    plain = model_scorer(model, Tokenizer().encode_batch, batch_size=100)  # a bare callable works too
    np.testing.assert_allclose(plain(windows), expected, rtol=1e-6)


def test_call_peaks_keeps_each_local_maximum_of_a_cluster():
    from genolm.scan import call_peaks

    starts = np.arange(0, 400, 10)
    scores = np.zeros(starts.size)
    scores[[5, 6, 7]] = [0.6, 0.9, 0.7]  # one peak at 60; 50 and 70 are suppressed (within 20 bp)
    scores[[10, 11]] = [0.8, 0.8]  # tie: the leftmost (100) wins, 110 is suppressed
    scores[20] = 0.95  # isolated
    scores[30] = 0.4  # below threshold
    calls = call_peaks("c", starts, scores, "+", 81, 0.5, min_distance=20, kind="TSS")
    assert [(c.start, c.end, c.peak, c.score) for c in calls] == [
        (60, 141, 60, 0.9),
        (100, 181, 100, 0.8),
        (200, 281, 200, 0.95),
    ]
    # with a 40 bp distance the 0.9 peak also suppresses 100, so 110 (50 bp away) becomes the local peak
    assert [c.start for c in call_peaks("c", starts, scores, "+", 81, 0.5, min_distance=40)] == [60, 110, 200]
    assert call_peaks("c", starts, np.full(starts.size, np.nan), "-", 81, 0.5, 20) == []
