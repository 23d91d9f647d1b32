"""Unit tests for genolm.kmers: hand-computed ids, stride/tail rules, the unknown-base policies, vocab files,
and cross-checks of the vectorised and streaming encoders against an obviously-correct pure-Python reference."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from genolm.errors import ConfigError, InputFormatError
from genolm.kmers import CLS, MASK, PAD, SPECIAL_TOKENS, UNK, KmerTokenizer
from genolm.seqio import reverse_complement


def reference_starts(length: int, k: int, stride: int, include_tail: bool) -> list[int]:
    if length < k:
        return []
    starts = list(range(0, length - k + 1, stride))
    if include_tail and starts[-1] != length - k:
        starts.append(length - k)
    return starts


def reference_encode(seq: str, k: int, stride: int, include_tail: bool, unknown: str = "unk") -> list[int]:
    """One k-mer at a time, straight from the definition: 4 + base-4 number, UNK (or dropped) unless all ACGT."""
    ids = []
    for start in reference_starts(len(seq), k, stride, include_tail):
        kmer = seq[start : start + k].upper()
        if all(base in "ACGT" for base in kmer):
            ids.append(4 + sum("ACGT".index(base) * 4 ** (k - 1 - i) for i, base in enumerate(kmer)))
        elif unknown == "unk":
            ids.append(UNK)
    return ids


def test_special_token_ids() -> None:
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<mask>", "<cls>")
    assert (PAD, UNK, MASK, CLS) == (0, 1, 2, 3)


@pytest.mark.parametrize(("k", "size"), [(1, 8), (2, 20), (3, 68), (6, 4100), (8, 65540)])
def test_vocab_size(k: int, size: int) -> None:
    assert KmerTokenizer(k).vocab_size == size


def test_hand_computed_ids() -> None:
    # AC = 0*4+1, CG = 1*4+2, GT = 2*4+3, each offset by the 4 special tokens
    tokens = KmerTokenizer(2).encode("ACGT")
    assert tokens.dtype == np.int64
    assert tokens.tolist() == [4 + 1, 4 + 6, 4 + 11]
    assert KmerTokenizer(1).encode("ACGT").tolist() == [4, 5, 6, 7]
    # ACG = 0*16+1*4+2 = 6, CGT = 16+8+3 = 27, GTA = 32+12+0 = 44
    assert KmerTokenizer(3).encode("ACGTA").tolist() == [10, 31, 48]
    assert KmerTokenizer(8).encode("TTTTTTTT").tolist() == [4 + 4**8 - 1]
    assert KmerTokenizer(8).encode("AAAAAAAA").tolist() == [4]


def test_stride_with_tail() -> None:
    tok = KmerTokenizer(3, stride=2)
    # grid starts 0, 2; last possible start 3 is off the grid, so a tail token starts there
    assert tok.token_starts(6).tolist() == [0, 2, 3]
    assert tok.n_tokens(6) == 3
    # ACG=10, GTA=48, TAC=48+0+1+4=53
    assert tok.encode("ACGTAC").tolist() == [10, 48, 53]


def test_stride_without_tail() -> None:
    tok = KmerTokenizer(3, stride=2, include_tail=False)
    assert tok.token_starts(6).tolist() == [0, 2]
    assert tok.n_tokens(6) == 2
    assert tok.encode("ACGTAC").tolist() == [10, 48]


def test_stride_on_grid_adds_no_tail() -> None:
    tok = KmerTokenizer(3, stride=3)
    assert tok.token_starts(6).tolist() == [0, 3]
    assert tok.encode("ACGTAC").tolist() == [10, 53]


def test_short_and_exact_lengths() -> None:
    tok = KmerTokenizer(4, stride=2)
    for seq in ("", "A", "ACG"):
        encoded = tok.encode(seq)
        assert encoded.dtype == np.int64
        assert encoded.shape == (0,)
        assert tok.n_tokens(len(seq)) == 0
        assert tok.token_starts(len(seq)).shape == (0,)
    assert tok.encode("ACGT").tolist() == [4 + 0 * 64 + 1 * 16 + 2 * 4 + 3]
    with pytest.raises(InputFormatError, match="non-negative"):
        tok.n_tokens(-1)


def test_non_acgt_bases_give_unk() -> None:
    tok = KmerTokenizer(2)
    # AC, CN, NG, GT
    assert tok.encode("ACNGT").tolist() == [5, UNK, UNK, 15]
    assert tok.encode("ARGT").tolist() == [UNK, UNK, 15]
    assert tok.encode("A-GT").tolist() == [UNK, UNK, 15]
    assert tok.encode("NNNN").tolist() == [UNK, UNK, UNK]
    # an N only inside the tail window: grid starts 0 (ACG) and 2 (GTA) are clean, tail start 3 (TAN) is not
    assert KmerTokenizer(3, stride=2).encode("ACGTAN").tolist() == [10, 48, UNK]
    assert KmerTokenizer(3, stride=3).encode("ACGTAN").tolist() == [10, UNK]


def test_skip_drops_kmers_touching_non_acgt() -> None:
    tok = KmerTokenizer(2, unknown="skip")
    # AC, [CN, NG dropped], GT: the tokens no longer sit at a fixed stride, so the starts are returned too
    assert tok.encode("ACNGT").tolist() == [5, 15]
    ids, starts = tok.encode_with_starts("ACNGT")
    assert ids.tolist() == [5, 15]
    assert starts.tolist() == [0, 3]
    assert tok.encode("NNNN").shape == (0,)  # an all-N sequence gives no tokens at all
    # the tail token is dropped like any other: grid ACG, GTA kept; tail TAN dropped
    assert KmerTokenizer(3, stride=2, unknown="skip").encode("ACGTAN").tolist() == [10, 48]
    # under "unk" the starts are just token_starts
    ids, starts = KmerTokenizer(2).encode_with_starts("ACNGT")
    assert ids.tolist() == [5, UNK, UNK, 15]
    assert starts.tolist() == [0, 1, 2, 3]


def test_error_names_record_and_position_of_first_offending_base() -> None:
    tok = KmerTokenizer(3, unknown="error")
    assert tok.encode("ACGTacgt").tolist() == KmerTokenizer(3).encode("ACGTACGT").tolist()
    with pytest.raises(InputFormatError) as err:
        tok.encode("ACGTACRTNA", name="chr7")
    message = str(err.value)
    assert message.startswith("record 'chr7': non-ACGT base 'R' at position 7 (1-based)")
    assert "unknown='error'" in message
    with pytest.raises(InputFormatError, match=r"^sequence: non-ACGT base 'N' at position 1 \(1-based\)"):
        tok.encode("NNNN")
    # bases that no k-mer covers are never looked at: stride 4 > k=2 without a tail skips positions 3-4 and 7+
    assert KmerTokenizer(2, stride=4, include_tail=False, unknown="error").encode("ACNNGTN").tolist() == [5, 15]
    # too short for one k-mer: no tokens and nothing to reject, under every policy
    for unknown in ("unk", "skip", "error"):
        assert KmerTokenizer(3, unknown=unknown).encode("NN").shape == (0,)


def test_encode_batch_policies() -> None:
    seqs = ["ACGT", "ANGT", "NN", "A"]
    tokens, lengths = KmerTokenizer(2, unknown="skip").encode_batch(seqs)
    assert lengths.tolist() == [3, 1, 0, 0]
    assert tokens.tolist() == [[5, 10, 15], [15, PAD, PAD], [PAD] * 3, [PAD] * 3]
    tokens, lengths = KmerTokenizer(2, unknown="skip").encode_batch(["NNN", "A"])
    assert tokens.shape == (2, 0) and lengths.tolist() == [0, 0]
    with pytest.raises(InputFormatError, match=r"^record 'r2': non-ACGT base 'N' at position 2"):
        KmerTokenizer(2, unknown="error").encode_batch(seqs, names=["r1", "r2", "r3", "r4"])
    with pytest.raises(InputFormatError, match="2 names for 4 sequences"):
        KmerTokenizer(2).encode_batch(seqs, names=["r1", "r2"])


def test_storage_dtype() -> None:
    assert KmerTokenizer(7).storage_dtype == np.uint16  # 4 + 4**7 = 16,388 ids
    assert KmerTokenizer(8).storage_dtype == np.int32  # 4 + 4**8 = 65,540 ids do not fit uint16
    with pytest.raises(ConfigError, match="cannot hold"):
        list(KmerTokenizer(8).encode_stream(["ACGTACGT"], dtype=np.uint16))


def test_every_byte_value() -> None:
    ids = KmerTokenizer(1).encode(bytes(range(256)))
    expected = {ord("A"): 4, ord("C"): 5, ord("G"): 6, ord("T"): 7}
    expected |= {byte + 32: value for byte, value in expected.items()}
    assert ids.tolist() == [expected.get(byte, UNK) for byte in range(256)]


def test_lowercase_equals_uppercase_and_bytes_equal_str() -> None:
    tok = KmerTokenizer(3)
    upper = tok.encode("ACGTNACGTTGCA")
    np.testing.assert_array_equal(tok.encode("acgtnACGTtgca"), upper)
    np.testing.assert_array_equal(tok.encode(b"ACGTNACGTTGCA"), upper)
    np.testing.assert_array_equal(tok.encode(bytearray(b"acgtnacgttgca")), upper)


def test_non_ascii_characters_are_unk_and_keep_positions() -> None:
    assert KmerTokenizer(1).encode("A\u00e9C").tolist() == [4, UNK, 5]
    with pytest.raises(TypeError):
        KmerTokenizer(1).encode(42)  # type: ignore[arg-type]


def test_encode_batch_pads_and_reports_lengths() -> None:
    tok = KmerTokenizer(2)
    seqs = ["ACGT", "AC", "A", "ACGTACGT", "TTTT"]
    tokens, lengths = tok.encode_batch(seqs)
    assert tokens.dtype == np.int64
    assert lengths.dtype == np.int64
    assert tokens.shape == (5, 7)
    assert lengths.tolist() == [3, 1, 0, 7, 3]
    assert tokens[0].tolist() == [5, 10, 15, PAD, PAD, PAD, PAD]
    assert tokens[1].tolist() == [5] + [PAD] * 6
    assert tokens[2].tolist() == [PAD] * 7
    assert tokens[3].tolist() == [5, 10, 15, 16, 5, 10, 15]  # TA = 3*4+0 -> 16
    assert tokens[4].tolist() == [19, 19, 19, PAD, PAD, PAD, PAD]


def test_encode_batch_empty() -> None:
    tokens, lengths = KmerTokenizer(3).encode_batch([])
    assert tokens.shape == (0, 0)
    assert lengths.shape == (0,)


def test_decode() -> None:
    tok = KmerTokenizer(2)
    assert tok.decode([PAD, UNK, MASK, CLS, 5, 15]) == ["<pad>", "<unk>", "<mask>", "<cls>", "AC", "GT"]
    assert tok.decode(np.array([], dtype=np.int64)) == []
    assert "".join(KmerTokenizer(3, stride=3).decode(KmerTokenizer(3, stride=3).encode("ACGTTGCAA"))) == ("ACGTTGCAA")
    with pytest.raises(InputFormatError, match="token id 20 at position 1"):
        tok.decode([4, 20])
    with pytest.raises(InputFormatError, match="token id -1"):
        tok.decode([-1])
    with pytest.raises(InputFormatError, match="integer ids"):
        tok.decode(np.array([1.5]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": 9},
        {"k": 2.0},
        {"k": True},
        {"k": 3, "stride": 0},
        {"k": 3, "stride": -1},
        {"k": 3, "include_tail": "yes"},
        {"k": 3, "unknown": "drop"},
        {"k": 3, "unknown": None},
    ],
)
def test_invalid_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        KmerTokenizer(**kwargs)


def test_tokenizer_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        KmerTokenizer(3).k = 4  # type: ignore[misc]


def test_vocab_json_round_trip(tmp_path) -> None:
    tok = KmerTokenizer(5, stride=2, include_tail=False, unknown="skip")
    path = tmp_path / "vocab.json"
    tok.save(path)
    on_disk = json.loads(path.read_text())
    assert on_disk == {
        "format": "genolm-kmer-vocab",
        "version": 2,
        "k": 5,
        "stride": 2,
        "include_tail": False,
        "specials": ["<pad>", "<unk>", "<mask>", "<cls>"],
        "alphabet": "ACGT",
        "vocab_size": 4 + 4**5,
        "unknown": "skip",
    }
    assert KmerTokenizer.load(path) == tok
    assert KmerTokenizer.from_dict(tok.to_dict()) == tok
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temp file left behind


def test_policy_is_part_of_the_vocabulary() -> None:
    # tokens made under one policy are never decoded with a tokenizer of another
    assert KmerTokenizer(3, unknown="skip") != KmerTokenizer(3)
    for unknown in ("unk", "skip", "error"):
        assert KmerTokenizer.from_dict(KmerTokenizer(3, unknown=unknown).to_dict()).unknown == unknown


def test_version_1_vocabulary_still_loads_as_unk(tmp_path) -> None:
    # written by genolm before the unknown policy existed: no "unknown" key, and UNK was the only behaviour
    version_1 = {
        "format": "genolm-kmer-vocab",
        "version": 1,
        "k": 4,
        "stride": 2,
        "include_tail": True,
        "specials": ["<pad>", "<unk>", "<mask>", "<cls>"],
        "alphabet": "ACGT",
        "vocab_size": 4 + 4**4,
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(version_1))
    assert KmerTokenizer.load(path) == KmerTokenizer(4, stride=2, unknown="unk")
    with pytest.raises(ConfigError, match=r"unknown keys \['unknown'\]"):
        KmerTokenizer.from_dict(version_1 | {"unknown": "skip"})  # version 1 had no policy to record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 3}, "version 3 is not supported"),
        ({"version": "1"}, "version '1' is not supported"),
        ({"format": "other"}, "format"),
        ({"k": 9}, "k-mer size"),
        ({"stride": 0}, "stride"),
        ({"include_tail": 1}, "include_tail"),
        ({"specials": ["<pad>", "<unk>"]}, "specials"),
        ({"alphabet": "ACGU"}, "alphabet"),
        ({"vocab_size": 999}, "vocab_size 999"),
        ({"extra": 1}, "unknown keys \\['extra'\\]"),
        ({"unknown": "drop"}, "unknown must be one of"),
    ],
)
def test_from_dict_rejects_malformed(change: dict, message: str) -> None:
    data = KmerTokenizer(3).to_dict() | change
    with pytest.raises(ConfigError, match=message):
        KmerTokenizer.from_dict(data)


def test_from_dict_rejects_missing_key_and_non_dict() -> None:
    data = KmerTokenizer(3).to_dict()
    del data["version"]
    with pytest.raises(ConfigError, match=r"missing keys \['version'\]"):
        KmerTokenizer.from_dict(data)
    data = KmerTokenizer(3).to_dict()
    del data["unknown"]
    with pytest.raises(ConfigError, match=r"missing keys \['unknown'\]"):
        KmerTokenizer.from_dict(data)
    with pytest.raises(ConfigError, match="JSON object"):
        KmerTokenizer.from_dict([3, 1])


def test_load_names_the_file(tmp_path) -> None:
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{not json")
    with pytest.raises(ConfigError, match=re.escape("broken.json: cannot read")):
        KmerTokenizer.load(bad_json)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(KmerTokenizer(3).to_dict() | {"version": 0}))
    with pytest.raises(ConfigError, match=re.escape("old.json: k-mer vocabulary version 0")):
        KmerTokenizer.load(old)
    with pytest.raises(ConfigError, match=re.escape("missing.json")):
        KmerTokenizer.load(tmp_path / "missing.json")


def random_dna(rng: np.random.Generator, length: int) -> str:
    # mostly ACGT with soft-masking, N runs/singletons, IUPAC and a gap character
    letters = np.array(list("ACGTACGTacgtNnRy-"))
    weights = np.array([4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 1.5, 0.5, 0.5, 0.5, 0.3])
    return "".join(rng.choice(letters, size=length, p=weights / weights.sum()))


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("unknown", ["unk", "skip"])
def test_vectorised_matches_reference(k: int, unknown: str) -> None:
    rng = np.random.default_rng(1000 + k)
    seqs = [random_dna(rng, int(n)) for n in rng.integers(0, 40, size=25)]
    seqs += [random_dna(rng, 600), "A" * (k - 1), "C" * k, "ACGT" * 10, "N" * (k + 3)]
    for stride in (1, 2, 3):
        for include_tail in (True, False):
            tok = KmerTokenizer(k, stride=stride, include_tail=include_tail, unknown=unknown)
            for seq in seqs:
                expected = reference_encode(seq, k, stride, include_tail, unknown)
                assert tok.encode(seq).tolist() == expected, (seq, stride, include_tail)
                assert tok.token_starts(len(seq)).tolist() == reference_starts(len(seq), k, stride, include_tail)
                if unknown == "unk":
                    assert tok.n_tokens(len(seq)) == len(expected)
            tokens, lengths = tok.encode_batch(seqs)
            for row, seq in enumerate(seqs):
                expected = reference_encode(seq, k, stride, include_tail, unknown)
                assert lengths[row] == len(expected)
                assert tokens[row, : len(expected)].tolist() == expected
                assert (tokens[row, len(expected) :] == PAD).all()


def stream(tok: KmerTokenizer, seq: str, chunk: int, **kwargs) -> np.ndarray:
    pieces = list(tok.encode_stream((seq[i : i + chunk] for i in range(0, len(seq), chunk)), **kwargs))
    assert all(piece.size for piece in pieces)  # empty arrays are never yielded
    return np.concatenate(pieces) if pieces else np.zeros(0, kwargs.get("dtype", np.int64))


@pytest.mark.parametrize("k", range(1, 9))
def test_stream_equals_whole_sequence_encode(k: int) -> None:
    """Chunk boundaries never change the tokens: every chunk size (below k too), stride, tail rule, policy."""
    rng = np.random.default_rng(2000 + k)
    seqs = [random_dna(rng, n) for n in (0, 1, k - 1, k, k + 1, 2 * k + 3, 97, 300)] + ["N" * (k + 2)]
    for stride in (1, 2, 3, k + 2):
        for include_tail in (True, False):
            for unknown in ("unk", "skip"):
                tok = KmerTokenizer(k, stride=stride, include_tail=include_tail, unknown=unknown)
                for seq in seqs:
                    expected = tok.encode(seq)
                    for chunk in sorted({1, 2, max(1, k - 1), k, k + 1, 7, 64, max(1, len(seq))}):
                        got = stream(tok, seq, chunk, dtype=tok.storage_dtype)
                        assert got.dtype == tok.storage_dtype
                        np.testing.assert_array_equal(got, expected, err_msg=f"{seq} {stride} {chunk}")
    # empty chunks anywhere are ignored
    tok = KmerTokenizer(k)
    np.testing.assert_array_equal(
        np.concatenate(list(tok.encode_stream(["", "ACGTACGTAC", "", "GGTTA", ""]))), tok.encode("ACGTACGTACGGTTA")
    )


@pytest.mark.parametrize("stride", [1, 2, 5])
def test_stream_error_names_the_position_in_the_whole_sequence(stride: int) -> None:
    rng = np.random.default_rng(stride)
    clean = "".join(rng.choice(list("ACGT"), size=200))
    for bad in (0, 37, 150, 199):
        seq = clean[:bad] + "Y" + clean[bad + 1 :]
        tok = KmerTokenizer(4, stride=stride, unknown="error")
        with pytest.raises(InputFormatError) as whole:
            tok.encode(seq, name="contig9")
        assert f"non-ACGT base 'Y' at position {bad + 1} (1-based)" in str(whole.value)
        for chunk in (1, 3, 4, 16, 200):
            with pytest.raises(InputFormatError) as streamed:
                stream(tok, seq, chunk, name="contig9")
            assert str(streamed.value) == str(whole.value)
    assert (
        stream(KmerTokenizer(4, stride=stride, unknown="error"), clean, 7).tolist()
        == KmerTokenizer(4, stride=stride).encode(clean).tolist()
    )


@pytest.mark.parametrize("k", range(1, 9))
def test_reverse_complement_tokens_equal_encoding_the_reverse_complement(k: int) -> None:
    rng = np.random.default_rng(3000 + k)
    for unknown in ("unk", "skip"):
        tok = KmerTokenizer(k, unknown=unknown)
        for n in (0, k - 1, k, 50, 400):
            seq = "".join(rng.choice(list("ACGTacgtNR"), size=n))
            forward = tok.encode(seq)
            np.testing.assert_array_equal(tok.reverse_complement_tokens(forward), tok.encode(reverse_complement(seq)))
            as_uint16 = tok.reverse_complement_tokens(forward.astype(np.uint16))
            assert as_uint16.dtype == np.uint16
    # AC, UNK, GT read backwards and complemented: GT -> AC, UNK, AC -> GT
    assert KmerTokenizer(2).reverse_complement_tokens(np.array([5, UNK, 15])).tolist() == [5, UNK, 15]
    assert KmerTokenizer(2).reverse_complement_tokens(np.array([5, 6])).tolist() == [11, 15]  # AC AG -> CT GT
    with pytest.raises(ConfigError, match="stride 1"):
        KmerTokenizer(3, stride=2).reverse_complement_tokens(np.array([4]))
