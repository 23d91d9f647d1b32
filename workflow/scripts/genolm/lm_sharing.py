"""Which model's language model another model reuses: models that differ only in their classifier (ULMFiT with
the whole encoder and with its embedding only, say) would otherwise pretrain and fine-tune identical LMs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# The settings a language model is trained from, per ULMFiT stage; anything else (train, transfer, task_params,
# seeds) concerns only the classifier. The seed is in the LM's path, so models share an LM seed by seed.
LM_SETTINGS = {
    "pretrain": ("arch", "tokenizer", "params", "pretrain"),
    "finetune": ("arch", "tokenizer", "params", "pretrain", "finetune"),
}


def lm_settings(settings: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The part of a model's settings that its `stage` language model is trained from: what the LM rules take as
    params, so that a change to the classifier alone (its lr, seeds, transfer) does not retrain the LM."""
    if stage not in LM_SETTINGS:
        raise ValueError(f"unknown language-model stage '{stage}' (expected one of {', '.join(LM_SETTINGS)})")
    return {key: settings.get(key) for key in LM_SETTINGS[stage]}


def _lm_identity(settings: Mapping[str, Any], stage: str) -> str | None:
    if not settings.get("pretrain") or (stage == "finetune" and not settings.get("finetune")):
        return None
    return json.dumps(lm_settings(settings, stage), sort_keys=True)


def language_model_owner(models: Mapping[str, Mapping[str, Any]], model: str, stage: str) -> str:
    """The first model, in config order, whose `stage` language model ('pretrain' or 'finetune') is trained
    from exactly the settings of `model`'s: the model whose results/ folder holds the LM that `model` reads."""
    identity = _lm_identity(models[model], stage)
    if identity is None:
        raise ValueError(f"model '{model}' trains no {stage} language model")
    return next(name for name, settings in models.items() if _lm_identity(settings, stage) == identity)


def label_seeds_where_shared(entries: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The report's language-model entries, keyed by LM folder (`.../seed<N>` last), with the seed added to every
    label that two entries share: models that share an LM but start from different first seeds read two LMs of
    one owner, and the report would otherwise show two curves under one name."""
    labels = [entry["label"] for entry in entries.values()]
    return [
        {**entry, "label": f"{entry['label']} (seed {_folder_seed(folder)})"}
        if labels.count(entry["label"]) > 1
        else dict(entry)
        for folder, entry in entries.items()
    ]


def _folder_seed(folder: str) -> str:
    last = folder.rstrip("/").rsplit("/", 1)[-1]
    if not last.startswith("seed"):
        raise ValueError(f"language-model folder '{folder}' does not end in seed<N>")
    return last.removeprefix("seed")
