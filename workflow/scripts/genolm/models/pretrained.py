"""Loading a pretrained language model's encoder into a classifier, shared by every pretrainable architecture."""

from __future__ import annotations

import torch
from torch import nn

from genolm.errors import CheckpointError


def load_pretrained_encoder(
    encoder: nn.Module, state_dict: dict[str, torch.Tensor], model: str, only: tuple[str, ...] | None = None
) -> None:
    """Load `lm.encoder.state_dict()`-style weights, or a whole LM state dict (the "encoder." prefix is stripped and
    everything else, e.g. a decoder or MLM head, ignored), after checking every name and shape, so a language model
    of another vocabulary or size fails with the tensors named instead of loading half.

    `only`: load just the encoder tensors whose names start with one of these prefixes (e.g. `("embedding.",)`) and
    keep the encoder's own values for the rest; every name and shape is still checked."""
    if any(key.startswith("encoder.") for key in state_dict):
        state_dict = {k[len("encoder.") :]: v for k, v in state_dict.items() if k.startswith("encoder.")}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"pretrained encoder state does not fit this {model} (layers or architecture differ): "
            f"missing {missing}, unexpected {unexpected}"
        )
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in own.items()
        if state_dict[k].shape != v.shape
    ]
    if wrong:
        raise CheckpointError(
            f"pretrained encoder state does not fit this {model} (vocabulary or sizes differ): " + "; ".join(wrong)
        )
    if only is not None:
        if not any(name.startswith(only) for name in own):
            raise CheckpointError(f"{model} encoder has no tensor named {' or '.join(only)}*")
        state_dict = {name: state_dict[name] if name.startswith(only) else own[name] for name in own}
    encoder.load_state_dict(state_dict)
