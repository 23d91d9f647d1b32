"""Zero-shot variant scoring (genolm.variant_effects): windows, errors, outputs, CLI, demo VCF and report parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from genolm.checkpoint import LANGUAGE_MODEL_ARCH, save_checkpoint
from genolm.cli import main
from genolm.demo import DemoConfig, write_demo
from genolm.errors import InputFormatError
from genolm.kmers import KmerTokenizer
from genolm.lm_scoring import load_language_model, sequence_log_likelihood
from genolm.models import build_language_model
from genolm.report_lm import auroc, lm_parts
from genolm.variant_effects import (
    TSV_COLUMNS,
    read_alleles,
    read_reference,
    read_scores_tsv,
    score_vcf,
    write_demo_variants,
)

TOKENIZER = KmerTokenizer(3, stride=2)
CHR1 = "".join(np.random.default_rng(1).choice(list("ACGT"), 300))
CHR2 = "".join(np.random.default_rng(2).choice(list("ACGT"), 120))


def write_vcf(path: Path, records: list[tuple[str, int, str, tuple[str, ...]]], contigs=(("chr1", 300), ("chr2", 120))):
    header = pysam.VariantHeader()
    for name, length in contigs:
        header.contigs.add(name, length=length)
    header.add_meta("INFO", items=[("ID", "CLASS"), ("Number", "1"), ("Type", "String"), ("Description", "x")])
    header.add_meta("INFO", items=[("ID", "END"), ("Number", "1"), ("Type", "Integer"), ("Description", "end")])
    with pysam.VariantFile(str(path), "w", header=header) as sink:
        for index, (chrom, pos, ref, alts) in enumerate(records):
            record = header.new_record(
                contig=chrom, start=pos - 1, stop=pos - 1 + len(ref), alleles=(ref, *alts), id=f"v{index}"
            )
            sink.write(record)


def records() -> list[tuple[str, int, str, tuple[str, ...]]]:
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    return [
        ("chr1", 3, CHR1[2], (other[CHR1[2]],)),  # near the start: left flank clipped to 2 bp
        ("chr1", 100, CHR1[99], (other[CHR1[99]], other[other[CHR1[99]]])),  # multi-allelic
        ("chr1", 150, CHR1[149], (CHR1[149] + "GA",)),  # insertion
        ("chr1", 200, CHR1[199:203], (CHR1[199],)),  # deletion of 3 bp
        ("chr2", 60, CHR2[59], ("<DEL>",)),  # symbolic: not scored
        ("chr2", 118, CHR2[117], (other[CHR2[117]],)),  # near the end: right flank clipped
    ]


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    fasta = tmp_path / "ref.fa"
    fasta.write_text(f">chr1\n{CHR1}\n>chr2\n{CHR2}\n")
    vcf = tmp_path / "in.vcf"
    write_vcf(vcf, records())
    torch.manual_seed(0)
    params = {"emb_dim": 8, "hidden": 12, "layers": 1}
    checkpoint = tmp_path / "lm.safetensors"
    save_checkpoint(build_language_model(params, TOKENIZER.vocab_size), checkpoint,
                    {"arch": LANGUAGE_MODEL_ARCH, "params": params, "vocab": TOKENIZER.to_dict()})  # fmt: skip
    return {"fasta": fasta, "vcf": vcf, "checkpoint": checkpoint}


def test_windows_alleles_and_clipping(inputs: dict[str, Path]) -> None:
    alleles = read_alleles(inputs["vcf"], read_reference(inputs["fasta"]), flank=10)
    assert [a.alt for a in alleles][1:3] == [records()[1][3][0], records()[1][3][1]]  # one row per ALT
    assert [a.kind for a in alleles] == ["snv", "snv", "snv", "insertion", "deletion", "symbolic", "snv"]
    first = alleles[0]
    assert (first.flank_left, first.flank_right) == (2, 10)
    assert first.ref_window == CHR1[0:13] and first.alt_window == CHR1[:2] + first.alt + CHR1[3:13]
    insertion = alleles[3]
    assert insertion.alt_window == CHR1[139:149] + insertion.alt + CHR1[150:160]
    deletion = alleles[4]
    assert deletion.ref_window == CHR1[189:213] and deletion.alt_window == CHR1[189:200] + CHR1[203:213]
    assert alleles[5].status == "skipped: symbolic allele" and alleles[5].ref_window == ""
    assert (alleles[6].flank_left, alleles[6].flank_right) == (10, 2)


def test_ref_mismatch_and_unknown_contig_name_the_record(inputs: dict[str, Path], tmp_path: Path) -> None:
    reference = read_reference(inputs["fasta"])
    wrong = "A" if CHR1[49] != "A" else "C"
    bad = tmp_path / "bad.vcf"
    write_vcf(bad, [("chr1", 50, wrong, ("G" if wrong != "G" else "T",))])
    with pytest.raises(InputFormatError, match=rf"bad.vcf: record chr1:50 v0 {wrong}>.*does not match the reference"):
        read_alleles(bad, reference, 10)
    unknown = tmp_path / "unknown.vcf"
    write_vcf(unknown, [("chrX", 5, "A", ("C",))], contigs=(("chrX", 10),))
    with pytest.raises(InputFormatError, match="record chrX:5 v0 A>C: contig 'chrX' is not in the reference"):
        read_alleles(unknown, reference, 10)


def test_scores_tsv_and_annotated_vcf(inputs: dict[str, Path], tmp_path: Path) -> None:
    tsv, vcf_out = tmp_path / "out.tsv", tmp_path / "out.vcf.gz"
    table = score_vcf(inputs["checkpoint"], inputs["fasta"], inputs["vcf"], tsv, vcf_out, flank=12)
    assert list(table.columns) == list(TSV_COLUMNS)
    back = read_scores_tsv(tsv)
    pd.testing.assert_frame_equal(back[["chrom", "pos", "ref", "alt", "status"]],
                                  table[["chrom", "pos", "ref", "alt", "status"]])  # fmt: skip
    np.testing.assert_allclose(back["llr"], table["llr"], rtol=1e-5)
    scored = table["status"] == "scored"
    assert scored.sum() == 6 and table.loc[~scored, ["llr", "l1", "cosine", "dot"]].isna().all().all()
    assert table["delta_prob"].isna().all()  # no classifier given
    # The LLR is the difference of the two windows' phase-averaged log-likelihoods.
    lm = load_language_model(inputs["checkpoint"], "cpu")
    alleles = read_alleles(inputs["vcf"], read_reference(inputs["fasta"]), 12)
    direct = [sequence_log_likelihood(lm, [a.alt_window])[0] - sequence_log_likelihood(lm, [a.ref_window])[0]
              for a in alleles if a.status == "scored"]  # fmt: skip
    np.testing.assert_allclose(table.loc[scored, "llr"], direct, rtol=1e-6, atol=1e-9)
    assert (table.loc[scored, "l1"] > 0).all() and (table.loc[scored, "cosine"] >= -1e-12).all()

    assert Path(str(vcf_out) + ".tbi").is_file()
    with pysam.VariantFile(str(vcf_out)) as annotated:
        for key in ("LM_LLR", "LM_L1", "LM_COS", "LM_DOT"):
            assert annotated.header.info[key].number == "A"
        assert "LM_DPROB" not in annotated.header.info
        rows = list(annotated.fetch("chr1", 99, 100))
        assert len(rows) == 1 and len(rows[0].info["LM_LLR"]) == 2  # one value per ALT
        symbolic = next(r for r in annotated if r.alts == ("<DEL>",))
        assert "LM_LLR" not in symbolic.info


def test_cli_variants_end_to_end(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:
    bgzipped = tmp_path / "in.vcf.gz"
    pysam.tabix_compress(str(inputs["vcf"]), str(bgzipped))
    out = tmp_path / "cli.tsv"
    code = main(["variants", "--lm", str(inputs["checkpoint"]), "--fasta", str(inputs["fasta"]),
                 "--vcf", str(bgzipped), "-o", str(out), "--vcf-out", str(tmp_path / "cli.vcf")])  # fmt: skip
    assert code == 0 and "6 of 7 ALT alleles scored" in capsys.readouterr().out
    assert len(read_scores_tsv(out)) == 7
    assert sum(1 for _ in pysam.VariantFile(str(tmp_path / "cli.vcf"))) == 6


def test_demo_variants_hit_promoter_boxes(tmp_path: Path) -> None:
    cfg = DemoConfig(seed=3, genome_length=60_000, contigs=1, is_families=1, is_copies_per_family=2)
    write_demo(cfg, tmp_path / "g.fa", tmp_path / "t.gff3", {})
    table = write_demo_variants(tmp_path / "g.fa", tmp_path / "t.gff3", tmp_path / "v.vcf.gz", 20, 20, seed=1)
    again = write_demo_variants(tmp_path / "g.fa", tmp_path / "t.gff3", tmp_path / "w.vcf.gz", 20, 20, seed=1)
    pd.testing.assert_frame_equal(table, again)  # seeded
    assert (table["class"] == "box").sum() == 20 and (table["class"] == "background").sum() == 20
    reference = read_reference(tmp_path / "g.fa")
    assert all(reference[r.chrom][r.pos - 1] == r.ref != r.alt for r in table.itertuples())
    with pysam.VariantFile(str(tmp_path / "v.vcf.gz")) as vcf:
        labels = [record.info["CLASS"] for record in vcf]
    assert sorted(set(labels)) == ["background", "box"] and len(labels) == 40


def test_auroc_and_report_parts(inputs: dict[str, Path], tmp_path: Path) -> None:
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, np.nan]), np.array([1.0])) == 0.5
    tsv = tmp_path / "s.tsv"
    table = score_vcf(inputs["checkpoint"], inputs["fasta"], inputs["vcf"], tsv, flank=12)
    table["class"] = ["box", "background"] * 3 + ["box"]
    table.to_csv(tsv, sep="\t", index=False, na_rep="NA")
    quality = tmp_path / "q.tsv"
    pd.DataFrame([{"lm": "pretrain/x/seed1", "genome": "demo", "loss": 3.0, "stride_loss": 2.77}]).to_csv(
        quality, sep="\t", index=False
    )
    entries = [
        {"kind": "quality", "lm": "pretrain/x/seed1", "table": str(quality)},
        {"kind": "variants", "lm": "pretrain/x/seed1", "vcf": "demo", "table": str(tsv)},
    ]
    html = "\n".join(lm_parts(entries, tmp_path / "figures"))
    assert "Language-model quality" in html and "stride_loss" in html
    assert "Variant scores: demo" in html and "auroc_box" in html and "<img" in html
    assert (tmp_path / "figures" / "lm_variants_demo.png").is_file()
