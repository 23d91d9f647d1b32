"""Models that differ only in their classifier share one language model (genolm.lm_sharing)."""

from __future__ import annotations

import pytest

from genolm.lm_sharing import label_seeds_where_shared, language_model_owner, lm_settings

AWD = {"emb_dim": 32, "hidden": 64, "layers": 2}
LM = {"genomes": ["demo"], "epochs": 1, "bptt": 50, "batch_size": 32, "lr": 0.003}
FT = {"epochs": 1, "bptt": 40, "batch_size": 32, "lr": 0.002}


def awd(**changes):
    settings = {"arch": "awd_lstm", "tokenizer": {"k": 4, "stride": 2}, "params": AWD, "pretrain": LM, "finetune": FT}
    settings.update(changes)
    return settings


MODELS = {
    "cnn": {"arch": "cnn", "tokenizer": {"k": 1, "stride": 1}, "params": {}, "pretrain": None},
    "ulmfit": awd(train={"lr": 0.01}, transfer="encoder"),
    "ulmfitemb": awd(train={"lr": 0.003}, transfer="embedding", seeds=[1, 2, 3]),  # only the classifier differs
    "longer": awd(finetune={**FT, "epochs": 3}),  # the same genome LM, fine-tuned longer
    "wider": awd(params={**AWD, "hidden": 128}),  # another LM altogether
    "k3": awd(tokenizer={"k": 3, "stride": 1}),
    "nofinetune": awd(finetune=None),
}


@pytest.mark.parametrize(
    ("model", "pretrain_owner", "finetune_owner"),
    [
        ("ulmfit", "ulmfit", "ulmfit"),
        ("ulmfitemb", "ulmfit", "ulmfit"),
        ("longer", "ulmfit", "longer"),
        ("wider", "wider", "wider"),
        ("k3", "k3", "k3"),
    ],
)
def test_the_owner_is_the_first_model_with_the_same_lm_settings(model, pretrain_owner, finetune_owner):
    assert language_model_owner(MODELS, model, "pretrain") == pretrain_owner
    assert language_model_owner(MODELS, model, "finetune") == finetune_owner


def test_a_model_without_finetuning_shares_the_genome_lm_only():
    assert language_model_owner(MODELS, "nofinetune", "pretrain") == "ulmfit"
    with pytest.raises(ValueError, match="'nofinetune' trains no finetune language model"):
        language_model_owner(MODELS, "nofinetune", "finetune")


def test_models_without_an_lm_and_unknown_stages_are_refused():
    with pytest.raises(ValueError, match="'cnn' trains no pretrain language model"):
        language_model_owner(MODELS, "cnn", "pretrain")
    with pytest.raises(ValueError, match="unknown language-model stage 'classify'"):
        language_model_owner(MODELS, "ulmfit", "classify")


def test_an_lm_is_trained_from_its_own_settings_only():
    """The LM rules' params: a classifier's lr, transfer or seeds are not among them, so changing those retrains
    no LM."""
    settings = MODELS["ulmfitemb"]
    assert lm_settings(settings, "pretrain") == {
        "arch": "awd_lstm", "tokenizer": {"k": 4, "stride": 2}, "params": AWD, "pretrain": LM,
    }  # fmt: skip
    assert lm_settings(settings, "finetune") == {**lm_settings(settings, "pretrain"), "finetune": FT}
    assert lm_settings(settings, "finetune") == lm_settings(MODELS["ulmfit"], "finetune")
    with pytest.raises(ValueError, match="unknown language-model stage 'train'"):
        lm_settings(settings, "train")


def test_report_labels_name_the_seed_only_where_two_lms_would_share_a_label():
    """ulmfit's first seed is 1 and ulmfitemb's 2: both read LMs owned by ulmfit, two curves for one name."""
    entries = {
        "pretrain/ulmfit/seed1": {"label": "ulmfit pretraining", "stride": 2},
        "pretrain/ulmfit/seed2": {"label": "ulmfit pretraining", "stride": 2},
        "finetune/promoter/ulmfit/seed1": {"label": "ulmfit fine-tuned on promoter", "stride": 2},
        "pretrain/transformer/seed1": {"label": "transformer pretraining", "stride": 1},
    }
    labels = [entry["label"] for entry in label_seeds_where_shared(entries)]
    assert labels == [
        "ulmfit pretraining (seed 1)",
        "ulmfit pretraining (seed 2)",
        "ulmfit fine-tuned on promoter",
        "transformer pretraining",
    ]
    assert entries["pretrain/ulmfit/seed1"]["label"] == "ulmfit pretraining"  # the input is not changed
    with pytest.raises(ValueError, match="does not end in seed"):
        label_seeds_where_shared({"pretrain/a": {"label": "x"}, "pretrain/b": {"label": "x"}})
