from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.demo import PWM_10, PWM_35
from genolm.kmers import KmerTokenizer
from genolm.logos import BASES, draw_logo, information_content, logo_heights, probability_logo
from genolm.models import build_classifier
from genolm.motifs import (
    KNOWN_MOTIFS,
    Motif,
    best_known_match,
    discover_motifs,
    find_seqlets,
    motif_table,
    pwm_from_sites,
    pwm_similarity,
    read_meme,
    write_meme,
)
from genolm.report_interpret import interpret_parts
from genolm.seqio import reverse_complement

WINDOW = 81
TSS = 60
BOX35, BOX10 = 20, 43  # planted box starts: centres at -37.5 and -14.5 from the TSS


def random_codes(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    return rng.integers(0, 4, size=(n, length))


def sample_box(rng: np.random.Generator, pwm: np.ndarray) -> np.ndarray:
    """Bases of a box drawn column by column from a demo PWM (rows A, C, G, T)."""
    return np.array([rng.choice(4, p=pwm[:, j]) for j in range(pwm.shape[1])])


def as_text(codes: np.ndarray) -> str:
    return "".join(BASES[c] for c in codes)


def test_information_content_and_logo_heights():
    pwm = np.array([[1, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]])
    assert information_content(pwm) == pytest.approx([2, 0, 1])
    assert logo_heights(pwm)[2] == pytest.approx([0.5, 0.5, 0, 0])


def test_logo_letters_fill_their_boxes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pwm = np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0], [0.25] * 4])
    figure, ax = plt.subplots()
    patches = probability_logo(ax, pwm)
    heights = logo_heights(pwm)
    # Column 0: four letters stacked to its IC; column 1: one G of 2 bits; column 2 (0 bits): nothing.
    assert len(patches) == 4 + 1
    column0 = [p.get_path().get_extents() for p in patches[:4]]
    assert sum(box.height for box in column0) == pytest.approx(information_content(pwm)[0], rel=1e-6)
    assert max(box.y1 for box in column0) == pytest.approx(heights[0].sum(), rel=1e-6)
    tallest = max(column0, key=lambda box: box.height)
    assert tallest.height == pytest.approx(heights[0, 0], rel=1e-6)  # A on top, the tallest
    assert tallest.y1 == pytest.approx(heights[0].sum(), rel=1e-6)
    g = patches[4].get_path().get_extents()
    assert (g.y0, g.y1) == pytest.approx((0.0, 2.0), abs=1e-9) and g.x0 > 0.5 and g.x1 < 1.5
    assert patches[4].get_label() == "G" and patches[4].get_facecolor()[:3] == pytest.approx(
        (0.969, 0.702, 0.169), abs=0.01
    )
    signed = draw_logo(ax, np.array([[0.0, -0.3, 0.0, 0.0]]))
    box = signed[0].get_path().get_extents()
    assert (box.y0, box.y1) == pytest.approx((-0.3, 0.0), abs=1e-9)
    plt.close(figure)


def test_seqlets_are_the_importance_peaks():
    track = np.zeros(50)
    track[10:16] = 1.0
    track[30:36] = 0.8
    track[40:46] = 0.1  # below half of the first peak
    seqlets = find_seqlets([track], k=6, max_per_sequence=3, min_fraction=0.5)
    assert [(s.start, s.score) for s in seqlets] == [(10, pytest.approx(6.0)), (30, pytest.approx(4.8))]


def planted(rng, n: int, motif: str, positions: list[int], both_strands: bool = False):
    """Random sequences with `motif` (one random substitution in a third of them) at a random listed position
    (reverse complemented at random when both_strands), and an importance track peaking on it."""
    sequences, importances = [], []
    for _ in range(n):
        codes = random_codes(rng, 1, 60)[0]
        site = list(motif)
        if rng.random() < 0.33:
            site[rng.integers(len(site))] = BASES[rng.integers(4)]
        site = "".join(site)
        if both_strands and rng.random() < 0.5:
            site = reverse_complement(site)
        start = int(rng.choice(positions))
        seq = as_text(codes)
        seq = seq[:start] + site + seq[start + len(site) :]
        track = rng.normal(0, 0.02, 60)
        track[start : start + len(site)] += 1.0
        sequences.append(seq)
        importances.append(track)
    return sequences, importances


def test_discovery_recovers_a_planted_motif_and_its_position():
    rng = np.random.default_rng(1)
    seqs, imps = planted(rng, 60, "TATAAT", [30, 31])
    motifs, _ = discover_motifs(seqs, imps, both_strands=False, min_seqlets=10)
    assert motifs and motifs[0].consensus == "TATAAT" and len(motifs[0].sites) >= 50
    table = motif_table(motifs, origin=40, both_strands=False, origin_label="TSS")
    first = table.iloc[0]
    assert first["best_match"] == "sigma70_-10" and first["match_score"] > 0.95 and first["match_offset"] == 0
    assert -8.0 <= first["position"] <= -6.5  # centres 32.5 / 33.5 minus 40


def test_discovery_joins_reverse_complements_for_strand_agnostic_tasks():
    rng = np.random.default_rng(2)
    seqs, imps = planted(rng, 60, "GCTTACGAAG", [20], both_strands=True)
    motifs, _ = discover_motifs(seqs, imps, both_strands=True, k=8, min_seqlets=10)
    consensus = motifs[0].consensus
    assert "CTTACGAA" in consensus or "CTTACGAA" in reverse_complement(consensus)
    assert len(motifs[0].sites) >= 50 and {strand for _, _, strand in motifs[0].sites} == {"+", "-"}
    single, _ = discover_motifs(seqs, imps, both_strands=False, k=8, min_seqlets=10)
    assert len(single[0].sites) < 45  # one orientation only


def test_pwm_similarity_finds_the_offset_and_strand():
    motif = np.vstack([np.full((2, 4), 0.25), KNOWN_MOTIFS["sigma70_-35"], np.full((1, 4), 0.25)])
    score, offset = pwm_similarity(motif, KNOWN_MOTIFS["sigma70_-35"])
    assert score == pytest.approx(1.0) and offset == 2
    assert best_known_match(motif)[:1] == ("sigma70_-35",)
    flipped = motif[::-1, ::-1]
    assert best_known_match(flipped, both_strands=True)[0::3] == ("sigma70_-35", "-")


def test_meme_round_trip(tmp_path):
    motifs = [Motif("motif1", pwm_from_sites(["TATAAT", "TATGAT", "TACAAT"]), [(0, 1, "+")] * 3),
              Motif("TIR", pwm_from_sites(["ACGTTG", "ACGTTC"]), [(0, 1, "+")] * 2)]  # fmt: skip
    path = tmp_path / "m.meme"
    write_meme(motifs, path, both_strands=True)
    text = path.read_text()
    assert text.startswith("MEME version 4\n") and "strands: + -" in text and "nsites= 3" in text
    parsed = read_meme(path)
    assert list(parsed) == ["motif1", "TIR"]
    np.testing.assert_allclose(parsed["motif1"], motifs[0].pwm, atol=1e-6)


def train_promoter_cnn(seed: int = 0):
    """A CNN trained for a few seconds to tell windows with sigma70-like -35/-10 boxes from random ones."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n = 1200
    codes = random_codes(rng, n, WINDOW)
    labels = np.zeros(n, dtype=np.float32)
    for i in range(n // 2):
        codes[i, BOX35 : BOX35 + 6] = sample_box(rng, PWM_35)
        codes[i, BOX10 : BOX10 + 6] = sample_box(rng, PWM_10)
        labels[i] = 1
    tokenizer = KmerTokenizer(k=1)
    tokens, lengths = tokenizer.encode_batch([as_text(c) for c in codes])
    params = {"embed_dim": 8, "channels": [16], "kernel_sizes": [7], "dilations": [1], "dropout": 0.0}
    model = build_classifier("cnn", params, tokenizer.vocab_size, WINDOW)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x, lens, y = torch.as_tensor(tokens), torch.as_tensor(lengths), torch.as_tensor(labels)
    for _ in range(4):
        for batch in torch.randperm(n).split(64):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(x[batch], lens[batch]).reshape(-1), y[batch]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    held_out = [as_text(c) for c in codes[: n // 2 : 10]]
    return model, tokenizer, held_out


def test_trained_model_motifs_are_the_sigma70_boxes_at_their_offsets():
    from genolm.mutagenesis import importance, window_mutagenesis
    from genolm.scan import model_scorer

    model, tokenizer, _ = train_promoter_cnn()
    rng = np.random.default_rng(9)
    positives = []
    for _ in range(60):
        codes = random_codes(rng, 1, WINDOW)[0]
        codes[BOX35 : BOX35 + 6] = sample_box(rng, PWM_35)
        codes[BOX10 : BOX10 + 6] = sample_box(rng, PWM_10)
        positives.append(as_text(codes))
    scorer = model_scorer(model, tokenizer, "cpu")
    _, deltas = window_mutagenesis(positives, scorer)
    importances = [importance(s, d) for s, d in zip(positives, deltas, strict=True)]
    motifs, _ = discover_motifs(positives, importances, both_strands=False)
    table = motif_table(motifs, TSS, False, "TSS").set_index("best_match")
    for name, centre in (("sigma70_-10", BOX10 + 2.5 - TSS), ("sigma70_-35", BOX35 + 2.5 - TSS)):
        found = table.loc[[name]].sort_values("seqlets").iloc[-1]
        assert found["match_score"] > 0.8, table
        assert abs(found["position"] - centre) <= 1.5, table


def test_report_parts_show_figures_and_tables(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = tmp_path / "fig.png"
    figure, _ = plt.subplots()
    figure.savefig(png)
    plt.close(figure)
    ism = tmp_path / "site1.tsv"
    pd.DataFrame(
        {"contig": "c", "position": [5, 5, 6], "ref": "A", "alt": ["C", "G", "T"], "strand": "+", "offset": [0, 0, 1],
         "score_ref": 0.9, "score_alt": [0.2, 0.8, 0.85], "delta": [-0.7, -0.1, -0.05]}
    ).to_csv(ism, sep="\t", index=False)  # fmt: skip
    motifs = tmp_path / "motifs.tsv"
    motif_table([Motif("motif1", pwm_from_sites(["TATAAT"] * 12), [(0, 40, "+")] * 12)], 60, False, "TSS").to_csv(
        motifs, sep="\t", index=False
    )
    entries = [
        {"kind": "ism", "genome": "demo", "task": "promoter", "model": "cnn", "target": "site1", "table": ism,
         "figure": png},
        {"kind": "motifs", "task": "promoter", "model": "cnn", "motifs": motifs, "logos": png, "meme": "m.meme"},
    ]  # fmt: skip
    figures = tmp_path / "figures"
    html = "\n".join(interpret_parts(entries, figures))
    assert "ISM: demo / promoter / cnn / site1" in html and "Motifs: promoter / cnn" in html
    assert html.count('src="data:image/png;base64,') == 2
    assert "<td>-0.7</td>" in html and "<td>TATAAT</td>" in html and "sigma70_-10" in html
    assert sorted(p.name for p in figures.iterdir()) == ["ism_demo_promoter_cnn_site1.png", "motifs_promoter_cnn.png"]
    assert interpret_parts([], figures) == []
