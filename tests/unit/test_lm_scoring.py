"""Sequence log-likelihoods, masked marginals and embeddings of genolm.lm_scoring on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genolm.errors import ConfigError
from genolm.kmers import MASK, KmerTokenizer
from genolm.lm_scoring import (
    MASKED,
    NEXT,
    LanguageModel,
    embed_windows,
    masked_marginal,
    sequence_log_likelihood,
)
from genolm.models import build_language_model, build_masked_lm

TOKENIZER = KmerTokenizer(3, stride=2)
PARAMS = {"emb_dim": 8, "hidden": 12, "layers": 2, "embed_p": 0.0, "input_p": 0.0, "hidden_p": 0.0,
          "weight_p": 0.0, "output_p": 0.0}  # fmt: skip


def random_dna(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.fixture(scope="module")
def awd() -> LanguageModel:
    torch.manual_seed(0)
    model = build_language_model(PARAMS, TOKENIZER.vocab_size).eval()
    with torch.no_grad():  # larger weights than the default init, so log-probs vary between tokens
        model.encoder.embedding.weight.normal_(0, 1.0)
    return LanguageModel(model, TOKENIZER, NEXT, torch.device("cpu"))


@pytest.fixture(scope="module")
def mlm() -> LanguageModel:
    torch.manual_seed(0)
    model = build_masked_lm({"d_model": 16, "n_heads": 2, "layers": 1, "ff_dim": 32, "dropout": 0.0, "max_tokens": 64},
                            TOKENIZER.vocab_size).eval()  # fmt: skip
    return LanguageModel(model, TOKENIZER, MASKED, torch.device("cpu"))


def direct_log_likelihood(lm: LanguageModel, seq: str) -> float:
    """One token at a time with the LSTM state carried, mean over phases: the definition, without batching."""
    grid = KmerTokenizer(TOKENIZER.k, stride=TOKENIZER.stride, include_tail=False)
    total = 0.0
    for phase in range(TOKENIZER.stride):
        tokens = grid.encode(seq[phase:])
        state = None
        for i in range(len(tokens) - 1):
            with torch.no_grad():
                logits, _, _, state = lm.model.step(torch.tensor([[tokens[i]]]), state)
            total += float(torch.log_softmax(logits[0, 0].double(), -1)[tokens[i + 1]]) / TOKENIZER.stride
    return total


def test_log_likelihood_equals_token_by_token_computation(awd: LanguageModel) -> None:
    seqs = [random_dna(n, seed) for seed, n in enumerate((40, 23, 7, 3, 61))]  # mixed lengths: padding in batches
    got = sequence_log_likelihood(awd, seqs, batch_size=3)
    want = [direct_log_likelihood(awd, seq) for seq in seqs]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[3] == 0.0  # 3 bp: one token at phase 0, none at phase 1, so nothing is predicted


class UniformLM(nn.Module):
    """Next-token LM interface whose every prediction is uniform over the vocabulary."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        hidden = tokens.unsqueeze(-1).float()
        return torch.zeros(*tokens.shape, self.vocab), [hidden], [hidden]


def test_uniform_model_scores_every_predicted_token_ln_vocab() -> None:
    lm = LanguageModel(UniformLM(TOKENIZER.vocab_size), TOKENIZER, NEXT, torch.device("cpu"))
    seq = random_dna(41, 3)  # phase 0: 20 tokens, phase 1: 19 tokens -> 19 and 18 predictions
    got = sequence_log_likelihood(lm, [seq])[0]
    assert got == pytest.approx(-(19 + 18) / 2 * math.log(TOKENIZER.vocab_size))


def test_upstream_context_cancels_between_ref_and_alt(awd: LanguageModel) -> None:
    """A change at the last base only alters the last tokens: the LLR equals the difference of those terms."""
    ref = random_dna(30, 5)
    alt = ref[:-1] + ("A" if ref[-1] != "A" else "C")
    llr = np.diff(sequence_log_likelihood(awd, [ref, alt]))[0]
    assert llr == pytest.approx(direct_log_likelihood(awd, alt) - direct_log_likelihood(awd, ref), abs=1e-6)
    assert sequence_log_likelihood(awd, [ref, ref])[0] == sequence_log_likelihood(awd, [ref, ref])[1]


def test_sequence_log_likelihood_needs_a_next_token_lm(mlm: LanguageModel) -> None:
    with pytest.raises(ConfigError, match="next-token"):
        sequence_log_likelihood(mlm, ["ACGTACGT"])


def test_embeddings_are_phase_averaged_mean_hidden_states(awd: LanguageModel) -> None:
    seq = random_dna(25, 9)
    got = embed_windows(awd, [seq, seq[:11]], batch_size=1)
    grid = KmerTokenizer(TOKENIZER.k, stride=TOKENIZER.stride, include_tail=False)
    want = []
    for phase in range(2):
        _, raw, _ = awd.model(torch.from_numpy(grid.encode(seq[phase:]))[None])
        want.append(raw[-1][0].double().mean(0).detach().numpy())
    np.testing.assert_allclose(got[0], np.mean(want, axis=0), rtol=1e-5, atol=1e-7)
    assert got.shape == (2, PARAMS["emb_dim"])


def test_masked_marginal_matches_a_direct_masked_pass(mlm: LanguageModel) -> None:
    ref = random_dna(31, 11)
    alt = ref[:15] + ("G" if ref[15] != "G" else "T") + ref[16:]
    got = masked_marginal(mlm, [ref, ref], [alt, ref])
    grid = KmerTokenizer(TOKENIZER.k, stride=TOKENIZER.stride, include_tail=False)
    want = 0.0
    for phase in range(2):
        r, a = grid.encode(ref[phase:]), grid.encode(alt[phase:])
        starts = phase + 2 * np.arange(len(r))
        covering = (starts <= 15) & (starts + TOKENIZER.k > 15)
        inputs = torch.from_numpy(np.where(covering, MASK, r))[None]
        with torch.no_grad():
            log_probs = torch.log_softmax(mlm.model(inputs)[0].double(), -1).numpy()
        index = np.flatnonzero(covering)
        want += (log_probs[index, a[index]] - log_probs[index, r[index]]).sum() / 2
    assert got[0] == pytest.approx(want, abs=1e-6)
    assert np.isnan(got[1])  # nothing changed: no token to score


def test_masked_windows_longer_than_the_context_fail_clearly(mlm: LanguageModel) -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        embed_windows(mlm, [random_dna(200, 1)])
