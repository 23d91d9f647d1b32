"""Issue 9 outputs of the tiny run: mutagenesis, motifs, language-model quality and variant scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pysam
import pytest


@pytest.mark.e2e
def test_mutagenesis_scores_every_substitution(tiny_run):
    folder = tiny_run / "results" / "interpret" / "ism" / "demo" / "promoter" / "cnn"
    for target in ("site1", "userregion"):
        table = pd.read_csv(folder / f"{target}.tsv", sep="\t")
        assert (folder / f"{target}.png").stat().st_size > 0
        assert (table.groupby("position")["alt"].nunique() == 3).all()
        assert (table["ref"] != table["alt"]).all()
        np.testing.assert_allclose(table["delta"], table["score_alt"] - table["score_ref"], atol=1e-6)
    user = pd.read_csv(folder / "userregion.tsv", sep="\t")
    assert set(user["strand"]) == {"-"} and user["position"].min() == 1001 and user["position"].max() == 1100


@pytest.mark.e2e
def test_motifs_are_written_in_meme_format(tiny_run):
    folder = tiny_run / "results" / "interpret" / "motifs" / "promoter" / "cnn"
    assert (folder / "motifs.meme").read_text().startswith("MEME version")
    motifs = pd.read_csv(folder / "motifs.tsv", sep="\t")
    assert {"consensus", "seqlets", "information_content", "position"} <= set(motifs.columns)


@pytest.mark.e2e
def test_language_model_quality_has_held_out_rows_and_baselines(tiny_run):
    table = pd.read_csv(tiny_run / "results/lm/quality/pretrain/ulmfit/seed1.tsv", sep="\t")
    assert set(table["genome"]) == {"demo", "demo_heldout"}
    assert np.isfinite(table["loss"]).all()
    np.testing.assert_allclose(table["stride_loss"], np.log(4**2), rtol=1e-5)  # written to 6 significant digits


@pytest.mark.e2e
def test_variant_scores_cover_the_demo_vcf(tiny_run):
    table = pd.read_csv(tiny_run / "results/lm/variants/demo/pretrain/ulmfit/seed1.tsv", sep="\t")
    assert table["class"].value_counts().to_dict() == {"box": 10, "background": 10}
    assert np.isfinite(table[["llr", "l1", "cosine", "dot", "delta_prob"]].to_numpy()).all()
    with pysam.VariantFile(str(tiny_run / "results/lm/variants/demo/pretrain/ulmfit/seed1.vcf.gz")) as vcf:
        assert {"LM_LLR", "LM_DPROB"} <= set(vcf.header.info)
        assert sum(1 for _ in vcf) == 20
