"""genolm.demo: biological plausibility, exact truth coordinates, leak-free and non-trivial tasks."""

from __future__ import annotations

import gzip
import math
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from genolm.demo import (
    PWM_10,
    SPLITS,
    TASK_COLUMNS,
    DemoConfig,
    DemoGenome,
    Feature,
    build_task,
    generate_genome,
    write_demo,
    write_gff3,
)
from genolm.errors import ConfigError

STOPS = {"TAA", "TAG", "TGA"}
COMP = str.maketrans("ACGT", "TGCA")


def rc(seq: str) -> str:
    return seq.translate(COMP)[::-1]


def oriented(genome: DemoGenome, f: Feature) -> str:
    seq = genome.contigs[f.contig][f.start : f.end]
    return seq if f.strand == "+" else rc(seq)


def gc(seq: str) -> float:
    return (seq.count("G") + seq.count("C")) / len(seq)


def hamming(a: str, b: str) -> int:
    assert len(a) == len(b)
    return sum(x != y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def cfg() -> DemoConfig:
    return DemoConfig()


@pytest.fixture(scope="module")
def genome(cfg: DemoConfig) -> DemoGenome:
    return generate_genome(cfg)


@pytest.fixture(scope="module")
def tasks(genome: DemoGenome, cfg: DemoConfig) -> dict[str, pd.DataFrame]:
    return {task: build_task(genome, task, cfg) for task in ("promoter", "is")}


def of_type(genome: DemoGenome, kind: str) -> list[Feature]:
    return [f for f in genome.features if f.type == kind]


# ------------------------------------------------------------------------------------------------- config


def test_from_dict_converts_lists_and_rejects_unknown_keys() -> None:
    cfg = DemoConfig.from_dict({"seed": 7, "promoter_window": [50, 10], "split_fractions": [0.8, 0.1, 0.1]})
    assert cfg.seed == 7
    assert cfg.promoter_window == (50, 10)
    assert cfg.split_fractions == (0.8, 0.1, 0.1)
    assert DemoConfig.from_dict(cfg.to_dict()) == cfg
    assert DemoConfig.from_dict(None) == DemoConfig()
    with pytest.raises(ConfigError, match="is_famlies"):
        DemoConfig.from_dict({"is_famlies": 3})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gc", 0.95),
        ("genome_length", 10.5),
        ("contigs", 0),
        ("negatives_per_positive", True),
        ("split_fractions", [0.5, 0.2, 0.2]),
        ("promoter_window", [60]),
        ("is_divergence", -0.1),
    ],
)
def test_invalid_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        DemoConfig.from_dict({key: value})


def test_too_small_genome_for_is_copies_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="too small"):
        generate_genome(DemoConfig(genome_length=8_000))


# ------------------------------------------------------------------------------------------------- genome


def test_contigs_and_lengths(genome: DemoGenome, cfg: DemoConfig) -> None:
    assert list(genome.contigs) == ["chrom", "plasmid1"]
    assert sum(len(s) for s in genome.contigs.values()) == cfg.genome_length
    assert len(genome.contigs["plasmid1"]) == cfg.genome_length // 10
    for seq in genome.contigs.values():
        assert set(seq) == set("ACGT")


def test_genes_are_valid_orfs_on_both_strands(genome: DemoGenome, cfg: DemoConfig) -> None:
    cds = of_type(genome, "CDS")
    assert 350 <= len(cds) <= 550
    for f in cds:
        seq = oriented(genome, f)
        assert 300 <= len(seq) <= 3000 and len(seq) % 3 == 0, f.id
        assert seq[:3] == "ATG" and seq[-3:] in STOPS, f.id
        codons = {seq[i : i + 3] for i in range(0, len(seq) - 3, 3)}
        assert not codons & STOPS, f"in-frame stop in {f.id}"
    strands = Counter(f.strand for f in cds)
    assert min(strands.values()) > 0.3 * len(cds)
    # coding GC near the configured value, intergenic AT-richer by ~0.1
    coding = "".join(oriented(genome, f) for f in cds)
    assert abs(gc(coding) - cfg.gc) < 0.02
    for name, seq in genome.contigs.items():
        mask = np.zeros(len(seq), dtype=bool)
        for f in genome.features:
            if f.contig == name and f.type in ("CDS", "insertion_sequence"):
                mask[f.start : f.end] = True
        assert 0.8 <= mask.mean() <= 0.92, name  # ORFs (genes + transposases) cover ~85%
        arr = np.frombuffer(seq.encode(), dtype=np.uint8)
        inter_gc = np.isin(arr[~mask], (ord("G"), ord("C"))).mean()
        assert cfg.gc - 0.14 < inter_gc < cfg.gc - 0.06, name


def test_codon_usage_has_gc3_bias(genome: DemoGenome) -> None:
    """Gene-to-gene GC variation (incl. AT-rich islands) acts mostly through the third codon position."""
    per_gene = []
    for f in of_type(genome, "CDS"):
        inner = oriented(genome, f)[3:-3]
        per_gene.append([gc(inner[0::3]), gc(inner[1::3]), gc(inner[2::3]), gc(inner)])
    gc1, gc2, gc3, total = np.array(per_gene).T
    assert gc3.std() > 1.8 * max(gc1.std(), gc2.std())
    assert np.corrcoef(gc3, total)[0, 1] > 0.8
    assert gc1.mean() > gc2.mean() + 0.08  # amino-acid composition: GC1 > GC2 as in real proteomes
    assert any(f.attrs.get("island") == "true" for f in of_type(genome, "CDS"))


def test_promoters_match_their_recorded_boxes(genome: DemoGenome, cfg: DemoConfig) -> None:
    proms = of_type(genome, "promoter")
    cds = {f.id: f for f in of_type(genome, "CDS")}
    assert len(proms) >= len(cds)  # every gene has one, some a second
    assert len(proms) < (1 + cfg.promoters_per_gene_extra + 0.1) * len(cds)
    for f in proms:
        seq = oriented(genome, f)
        sp, disc = int(f.attrs["spacer"]), int(f.attrs["discriminator"])
        assert 15 <= sp <= 19 and 5 <= disc <= 9
        assert len(seq) == 6 + sp + 6 + disc + 1
        assert seq[:6] == f.attrs["box35"], f.id
        assert seq[6 + sp : 12 + sp] == f.attrs["box10"], f.id
        assert int(f.attrs["tss"]) == (f.end - 1 if f.strand == "+" else f.start)
        gene = cds[f.attrs["gene"]]
        assert gene.strand == f.strand and gene.contig == f.contig
        utr = gene.start - f.end if f.strand == "+" else f.start - gene.end
        assert 0 <= utr < 500, f.id
    assert Counter(int(f.attrs["spacer"]) for f in proms).most_common(1)[0][0] == 17
    plus1 = Counter(oriented(genome, f)[-1] for f in proms)
    assert (plus1["A"] + plus1["G"]) / len(proms) > 0.7
    # sampled from PWMs, not pasted: consensus is common but far from universal
    box10 = [f.attrs["box10"] for f in proms]
    exact = sum(b == "TATAAT" for b in box10) / len(box10)
    assert 0.02 < exact < 0.3
    mean_dist = np.mean([hamming(b, "TATAAT") for b in box10])
    assert 1.0 < mean_dist < 3.0


def test_is_copies_match_family_consensus_exactly(genome: DemoGenome, cfg: DemoConfig) -> None:
    copies = of_type(genome, "insertion_sequence")
    assert len(copies) == cfg.is_families * cfg.is_copies_per_family
    assert {f.strand for f in copies} == {"+", "-"}
    assert {f.contig for f in copies} == set(genome.contigs)
    children: dict[str, list[Feature]] = {}
    for f in genome.features:
        if f.parent:
            children.setdefault(f.parent, []).append(f)
    for f in copies:
        fam = genome.is_families[f.attrs["family"]]
        seq = oriented(genome, f)
        # exact coordinates: the Hamming distance to the consensus is exactly the recorded substitution count
        assert hamming(seq, fam.consensus) == int(f.attrs["substitutions"]), f.id
        assert int(f.attrs["substitutions"]) < 2 * cfg.is_divergence * len(seq)
        assert hamming(seq[: len(fam.ir_left)], fam.ir_left) <= 0.3 * len(fam.ir_left)
        assert hamming(seq[-len(fam.ir_right) :], rc(fam.ir_left)) <= fam.ir_mismatches + 0.3 * len(fam.ir_left)
        contig = genome.contigs[f.contig]
        tsd = f.attrs["tsd"]
        assert len(tsd) == fam.tsd_length
        assert contig[f.start - len(tsd) : f.start] == tsd == contig[f.end : f.end + len(tsd)], f.id
        kids = {k.type: [] for k in children[f.id]}
        for k in children[f.id]:
            kids[k.type].append(k)
            assert f.start - len(tsd) <= k.start < k.end <= f.end + len(tsd)
        irs = sorted(kids["inverted_repeat"], key=lambda k: k.attrs["side"])
        assert [oriented(genome, k) for k in irs] == [seq[: len(fam.ir_left)], seq[-len(fam.ir_right) :]]
        assert [contig[k.start : k.end] for k in kids["target_site_duplication"]] == [tsd, tsd]
    for fam in genome.is_families.values():
        assert hamming(fam.ir_right, rc(fam.ir_left)) == fam.ir_mismatches
        assert 15 <= len(fam.ir_left) <= 35 and 2 <= fam.tsd_length <= 9
        orf = fam.consensus[fam.orf_start : fam.orf_end]
        assert 900 <= len(orf) <= 1500 and orf[:3] == "ATG" and orf[-3:] in STOPS


def test_is_elements_disrupt_no_gene_or_promoter(genome: DemoGenome, cfg: DemoConfig) -> None:
    up = max(cfg.promoter_window)
    protected = []
    for f in genome.features:
        if f.type in ("CDS", "promoter", "terminator"):
            protected.append((f.contig, f.start, f.end))
        if f.type == "promoter":
            tss = int(f.attrs["tss"])
            protected.append((f.contig, tss - up, tss + up + 1))  # the window, whichever its orientation
    for f in of_type(genome, "insertion_sequence"):
        for contig, s, e in protected:
            assert contig != f.contig or e <= f.start or s >= f.end, f.id


def test_generation_is_deterministic_and_seeded(
    genome: DemoGenome, cfg: DemoConfig, tasks: dict[str, pd.DataFrame]
) -> None:
    again = generate_genome(cfg)
    assert again.contigs == genome.contigs
    assert again.features == genome.features
    for task, df in tasks.items():
        assert build_task(again, task, cfg).equals(df), task
    other = generate_genome(DemoConfig(seed=2))
    assert other.contigs["chrom"] != genome.contigs["chrom"]
    assert other.features != genome.features


# --------------------------------------------------------------------------------------------------- GFF3


def parse_gff(path: Path) -> tuple[list[str], list[list[str]]]:
    directives, rows = [], []
    for line in path.read_text().splitlines():
        if line.startswith("##"):
            directives.append(line)
        elif line and not line.startswith("#"):
            rows.append(line.split("\t"))
    return directives, rows


def test_gff3_round_trip(genome: DemoGenome, tmp_path: Path) -> None:
    path = tmp_path / "truth.gff3"
    write_gff3(genome, path)
    directives, rows = parse_gff(path)
    assert directives[0] == "##gff-version 3"
    assert directives[1:] == [f"##sequence-region {n} 1 {len(s)}" for n, s in genome.contigs.items()]
    assert len(rows) == len(genome.features)
    ids, parents = set(), set()
    by_id = {f.id: f for f in genome.features}
    for cols in rows:
        assert len(cols) == 9
        attrs = dict(kv.split("=", 1) for kv in cols[8].split(";"))
        assert attrs["ID"] not in ids
        ids.add(attrs["ID"])
        f = by_id[attrs["ID"]]
        assert (cols[0], int(cols[3]), int(cols[4]), cols[6], cols[2]) == (
            f.contig,
            f.start + 1,
            f.end,
            f.strand,
            f.type,
        )
        assert cols[7] == ("0" if f.type == "CDS" else ".")
        if "Parent" in attrs:
            parents.add(attrs["Parent"])
        # promoter box attributes recover the sequence at the 1-based closed coordinates
        if f.type == "promoter":
            seq = genome.contigs[cols[0]][int(cols[3]) - 1 : int(cols[4])]
            seq = seq if cols[6] == "+" else rc(seq)
            assert seq.startswith(attrs["box35"]) and attrs["box10"] in seq
    assert parents and parents <= ids


def test_gff3_escapes_reserved_characters(tmp_path: Path) -> None:
    genome = DemoGenome(
        contigs={"c1": "ACGT" * 10},
        features=[Feature("c1", 0, 5, "+", "promoter", "p;1", {"note": "a;b=c,d%e&f\tg"})],
    )
    path = tmp_path / "esc.gff3"
    write_gff3(genome, path)
    _, rows = parse_gff(path)
    assert rows[0][8] == "ID=p%3B1;note=a%3Bb%3Dc%2Cd%25e%26f%09g"
    attrs = dict(kv.split("=", 1) for kv in rows[0][8].split(";"))
    assert unquote(attrs["note"]) == "a;b=c,d%e&f\tg"


# -------------------------------------------------------------------------------------------------- tasks


def test_task_tables_have_the_contract_columns(genome: DemoGenome, tasks: dict[str, pd.DataFrame]) -> None:
    for task, df in tasks.items():
        assert tuple(df.columns) == TASK_COLUMNS
        assert df["id"].is_unique
        assert set(df["label"]) == {0, 1} and df["label"].dtype == np.int64
        assert set(df["split"]) == set(SPLITS) and set(df["strand"]) == {"+", "-"}
        for row in df.itertuples():
            seq = genome.contigs[row.contig][row.start : row.end]
            assert row.sequence == (seq if row.strand == "+" else rc(seq)), (task, row.id)
        for split in SPLITS:
            sub = df[df["split"] == split]
            assert (sub["label"] == 0).sum() == 3 * (sub["label"] == 1).sum(), (task, split)


def test_default_dataset_sizes(tasks: dict[str, pd.DataFrame]) -> None:
    prom, is_ = tasks["promoter"], tasks["is"]
    assert 500 <= prom["label"].sum() <= 800
    assert 300 <= is_["label"].sum() <= 1000
    assert (prom["end"] - prom["start"] == 81).all() and (is_["end"] - is_["start"] == 400).all()
    share = prom[prom["label"] == 1]["split"].value_counts(normalize=True)
    assert 0.55 < share["train"] < 0.85 and share["valid"] > 0.08 and share["test"] > 0.08


def test_promoter_positives_are_oriented_windows(genome: DemoGenome, tasks: dict[str, pd.DataFrame]) -> None:
    proms = {f.id: f for f in of_type(genome, "promoter")}
    pos = tasks["promoter"][tasks["promoter"]["label"] == 1]
    assert set(pos["id"]) == set(proms)
    for row in pos.itertuples():
        f = proms[row.id]
        assert row.strand == f.strand
        # TSS at offset 60 of the oriented window; the -35 box and -10 box upstream of it
        promoter_seq = oriented(genome, f)
        assert row.sequence[60 - len(promoter_seq) + 1 : 61] == promoter_seq


def intervals(df: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for contig, sub in df.groupby("contig"):
        sub = sub.sort_values("start")
        out[contig] = (sub["start"].to_numpy(), np.maximum.accumulate(sub["end"].to_numpy()))
    return out


def overlaps_any(df: pd.DataFrame, others: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """For each row of df: does it overlap any interval in `others` (sorted starts, running max of ends)?"""
    hit = np.zeros(len(df), dtype=bool)
    for i, (contig, s, e) in enumerate(zip(df["contig"], df["start"], df["end"], strict=True)):
        if contig in others:
            starts, maxend = others[contig]
            k = np.searchsorted(starts, e, side="left")
            hit[i] = k > 0 and maxend[k - 1] > s
    return hit


def test_splits_are_leak_free(tasks: dict[str, pd.DataFrame]) -> None:
    for task, df in tasks.items():
        for a in SPLITS:
            for b in SPLITS:
                if a < b:
                    assert not overlaps_any(df[df["split"] == a], intervals(df[df["split"] == b])).any(), (
                        task,
                        a,
                        b,
                    )
    is_pos = tasks["is"][tasks["is"]["label"] == 1]
    copy_id = is_pos["id"].str.rsplit("_w", n=1).str[0]
    assert (is_pos.groupby(copy_id)["split"].nunique() == 1).all()
    family = copy_id.str.split("_").str[0]
    assert (is_pos.groupby(family)["split"].nunique() == 3).all()  # every split sees every family


def test_negatives_never_overlap_positive_elements(
    genome: DemoGenome, cfg: DemoConfig, tasks: dict[str, pd.DataFrame]
) -> None:
    up, down = cfg.promoter_window
    elements = []
    for f in of_type(genome, "promoter"):
        tss = int(f.attrs["tss"])
        s, e = (tss - up, tss + down + 1) if f.strand == "+" else (tss - down, tss + up + 1)
        elements.append((f.contig, s, e))
    prom = pd.DataFrame(elements, columns=["contig", "start", "end"])
    neg = tasks["promoter"][tasks["promoter"]["label"] == 0]
    assert not overlaps_any(neg, intervals(prom)).any()
    copies = pd.DataFrame(
        [
            (f.contig, f.start - len(f.attrs["tsd"]), f.end + len(f.attrs["tsd"]))
            for f in of_type(genome, "insertion_sequence")
        ],
        columns=["contig", "start", "end"],
    )
    neg = tasks["is"][tasks["is"]["label"] == 0]
    assert not overlaps_any(neg, intervals(copies)).any()
    pos = tasks["is"][tasks["is"]["label"] == 1]
    assert (overlaps_any(pos, intervals(copies))).all()


def gc_threshold_baseline(df: pd.DataFrame) -> tuple[float, float]:
    """Best GC threshold (either direction) on train, scored on test: (accuracy, balanced accuracy)."""
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    x, y = train["sequence"].map(gc).to_numpy(), train["label"].to_numpy()
    best = (-1.0, 0.0, 1)
    for t in np.unique(x):
        for sign in (1, -1):
            acc = float(((sign * (x - t) >= 0) == y).mean())
            best = max(best, (acc, t, sign))
    _, t, sign = best
    xt, yt = test["sequence"].map(gc).to_numpy(), test["label"].to_numpy()
    pred = sign * (xt - t) >= 0
    return float((pred == yt).mean()), float(0.5 * (pred[yt == 1].mean() + (~pred[yt == 0]).mean()))


@pytest.mark.parametrize("task", ["promoter", "is"])
def test_gc_content_alone_does_not_solve_the_task(tasks: dict[str, pd.DataFrame], task: str) -> None:
    df = tasks[task]
    acc, balanced = gc_threshold_baseline(df)
    assert acc < 0.85 and balanced < 0.65, (acc, balanced)
    gc_by_label = df.groupby("label")["sequence"].apply(lambda s: s.map(gc).mean())
    assert abs(gc_by_label[1] - gc_by_label[0]) < 0.02  # unmatched, promoter windows differ by ~0.1


def max_log_odds(seq: str, pwm: np.ndarray) -> float:
    """Best PWM log-odds (vs uniform background) over all placements in `seq`."""
    idx = np.frombuffer(seq.encode(), dtype=np.uint8)
    codes = np.searchsorted(np.frombuffer(b"ACGT", dtype=np.uint8), idx)
    lo = np.log(pwm / 0.25)
    w = pwm.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(codes, w)
    return float(lo[windows, np.arange(w)].sum(axis=1).max())


def test_positives_carry_the_planted_signal(genome: DemoGenome, tasks: dict[str, pd.DataFrame]) -> None:
    prom = tasks["promoter"]
    is_pos = prom["label"] == 1
    # where a -10 box belongs (5-9 bp before the TSS at offset 60) positives score far above negatives ...
    box_zone = prom["sequence"].map(lambda s: max_log_odds(s[60 - 9 - 6 : 60 - 5], PWM_10))
    assert box_zone[is_pos].mean() > box_zone[~is_pos].mean() + 2.0
    # ... while anywhere in the window AT-rich negatives also hold decent matches: the task is not trivial
    anywhere = prom["sequence"].map(lambda s: max_log_odds(s, PWM_10))
    assert anywhere[~is_pos].mean() < anywhere[is_pos].mean() < anywhere[~is_pos].mean() + 2.0
    # IS windows share intact 12-mers with their family consensus; negatives essentially never do
    k = 12
    kmers = set()
    for fam in genome.is_families.values():
        for s in (fam.consensus, rc(fam.consensus)):
            kmers.update(s[i : i + k] for i in range(len(s) - k + 1))
    is_ = tasks["is"]
    shared = is_["sequence"].map(lambda s: np.mean([s[i : i + k] in kmers for i in range(len(s) - k + 1)]))
    assert shared[is_["label"] == 1].mean() > 0.2
    assert shared[is_["label"] == 0].mean() < 0.01


def test_small_config_has_every_split(tmp_path: Path) -> None:
    cfg = DemoConfig(genome_length=20_000, is_families=1, is_copies_per_family=3)
    genome = generate_genome(cfg)
    for task in ("promoter", "is"):
        df = build_task(genome, task, cfg)
        assert set(zip(df["split"], df["label"], strict=True)) == {(s, y) for s in SPLITS for y in (0, 1)}, task


# ---------------------------------------------------------------------------------------------- write_demo


def test_write_demo_is_byte_identical_across_runs(tmp_path: Path) -> None:
    cfg = DemoConfig(genome_length=60_000, is_families=2, is_copies_per_family=3)
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        paths = {
            "fasta": d / "genome.fa.gz",
            "gff": d / "truth.gff3",
            **{f"{t}_{s}": d / f"{t}_{s}.tsv" for t in ("promoter", "is") for s in SPLITS},
        }
        tasks = {t: {s: paths[f"{t}_{s}"] for s in SPLITS} for t in ("promoter", "is")}
        genome = write_demo(cfg, paths["fasta"], paths["gff"], tasks)
        outs.append({k: p.read_bytes() for k, p in paths.items()})
        assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert outs[0] == outs[1]
    # FASTA parses back to the genome, 80-column lines
    text = gzip.decompress(outs[0]["fasta"]).decode()
    records = {}
    for chunk in text.split(">")[1:]:
        header, *lines = chunk.splitlines()
        assert all(len(line) <= 80 for line in lines)
        records[header] = "".join(lines)
    assert records == genome.contigs
    table = pd.read_csv(tmp_path / "a" / "promoter_test.tsv", sep="\t")
    assert tuple(table.columns) == TASK_COLUMNS and set(table["split"]) == {"test"}
    expected = build_task(genome, "promoter", cfg)
    assert table.reset_index(drop=True).equals(expected[expected["split"] == "test"].reset_index(drop=True))


def test_write_demo_rejects_unknown_outputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holdout"):
        write_demo(DemoConfig(), tmp_path / "g.fa", tmp_path / "t.gff3", {"promoter": {"holdout": tmp_path / "x"}})
    with pytest.raises(ConfigError, match="enhancer"):
        build_task(DemoGenome({"c": "ACGT"}, []), "enhancer", DemoConfig())  # type: ignore[arg-type]
    assert math.isclose(sum(DemoConfig().split_fractions), 1.0)
