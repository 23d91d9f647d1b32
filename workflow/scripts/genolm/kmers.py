"""Vectorised k-mer tokenizer: DNA string -> int64 token ids, with a versioned JSON vocabulary.

Token ids: 0..3 are the special tokens, and a k-mer's id is ``4 + its base-4 number`` with A=0, C=1,
G=2, T=3 and the first base most significant (``"AC"`` -> 4 + 0*4 + 1 = 5). A k-mer that touches any
byte other than ACGT/acgt (N, IUPAC codes, gaps, junk) becomes ``UNK``; soft-masked (lower-case) bases
give the same ids as upper-case ones.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genolm.atomic import atomic_writer
from genolm.errors import ConfigError, InputFormatError

__all__ = [
    "ALPHABET",
    "CLS",
    "MASK",
    "PAD",
    "SPECIAL_TOKENS",
    "UNK",
    "VOCAB_VERSION",
    "KmerTokenizer",
]

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<pad>", "<unk>", "<mask>", "<cls>")
PAD, UNK, MASK, CLS = 0, 1, 2, 3
ALPHABET = "ACGT"
VOCAB_VERSION = 1
MAX_K = 8  # 4**8 k-mers still fit the uint16 working array used by the encoder
_N_SPECIAL = len(SPECIAL_TOKENS)
_VOCAB_FORMAT = "genolm-kmer-vocab"
_VOCAB_KEYS = frozenset({"format", "version", "k", "stride", "include_tail", "specials", "alphabet", "vocab_size"})

_ACGT_BYTES = (ALPHABET + ALPHABET.lower()).encode("ascii")
# Byte -> 1 if it is not A/C/G/T in either case, else 0: a lookup table for bytes.translate, which
# applies it at C speed (~2x faster than a numpy gather); the result is viewed as a bool array.
_NOT_ACGT_TABLE = bytes(0 if byte in _ACGT_BYTES else 1 for byte in range(256))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@functools.cache
def _kmer_strings(k: int) -> tuple[str, ...]:
    """All k-mers in id order (itertools.product enumerates with the first base most significant)."""
    return tuple("".join(p) for p in itertools.product(ALPHABET, repeat=k))


def _base_codes(rows: np.ndarray) -> np.ndarray:
    """A/C/G/T (either case) -> 0/1/2/3 as uint8; any other byte gets an arbitrary code in 0..3.

    ((b >> 1) ^ (b >> 2)) & 3 happens to give exactly A=0, C=1, G=2, T=3 for the ASCII codes of
    ACGT and acgt. Three elementwise passes are ~5x faster than a 256-entry table gather, the largest
    single cost of encoding. Non-ACGT bytes need no special value: their k-mers are overwritten with UNK.
    """
    codes = rows >> 1
    codes ^= rows >> 2
    codes &= 3
    return codes


def _as_bytes(seq: str | bytes | bytearray) -> bytes | bytearray:
    if isinstance(seq, str):
        # One byte per character; non-ASCII characters become b'?' and so UNK, keeping positions aligned.
        return seq.encode("ascii", errors="replace")
    if isinstance(seq, bytes | bytearray):
        return seq
    raise TypeError(f"expected str or bytes, got {type(seq).__name__}")


@dataclass(frozen=True)
class KmerTokenizer:
    """k-mer tokenizer over A/C/G/T with k-mer starts every ``stride`` bases.

    ``include_tail``: when the last possible start ``L - k`` is not on the stride grid, one extra token
    starting at ``L - k`` is appended so that no base at the end of the sequence is dropped.
    """

    k: int
    stride: int = 1
    include_tail: bool = True

    def __post_init__(self) -> None:
        if not _is_int(self.k) or not 1 <= self.k <= MAX_K:
            raise ConfigError(f"k-mer size k must be an integer in 1..{MAX_K}, got {self.k!r}")
        if not _is_int(self.stride) or self.stride < 1:
            raise ConfigError(f"k-mer stride must be an integer >= 1, got {self.stride!r}")
        if not isinstance(self.include_tail, bool | np.bool_):
            raise ConfigError(f"include_tail must be a boolean, got {self.include_tail!r}")

    @property
    def vocab_size(self) -> int:
        return _N_SPECIAL + 4**self.k

    # ------------------------------------------------------------------ positions
    def _grid(self, length: int) -> tuple[int, bool]:
        """(number of tokens on the stride grid, whether a tail token is added)."""
        if not _is_int(length) or length < 0:
            raise InputFormatError(f"sequence length must be a non-negative integer, got {length!r}")
        if length < self.k:
            return 0, False
        last = length - self.k
        return last // self.stride + 1, self.include_tail and last % self.stride != 0

    def n_tokens(self, length: int) -> int:
        """Number of tokens :meth:`encode` returns for a sequence of ``length`` bases."""
        n_grid, tail = self._grid(length)
        return n_grid + tail

    def token_starts(self, length: int) -> np.ndarray:
        """0-based offset of each token's first base, for a sequence of ``length`` bases (int64)."""
        n_grid, tail = self._grid(length)
        starts = np.arange(n_grid + tail, dtype=np.int64) * self.stride
        if tail:
            starts[-1] = length - self.k
        return starts

    # ------------------------------------------------------------------ encoding
    def encode(self, seq: str | bytes) -> np.ndarray:
        """Token ids (int64, one per k-mer start); empty when ``len(seq) < k``."""
        raw = _as_bytes(seq)
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(1, len(raw))
        return self._encode_rows(rows, raw)[0]

    def encode_batch(self, seqs: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Encode many sequences: (tokens[B, Tmax] right-padded with PAD, lengths[B]) as int64.

        Sequences of equal length are encoded together as one 2-D array, which makes batches of
        fixed-size windows (the common case) cost one vectorised pass instead of B Python calls.
        """
        raws = [_as_bytes(seq) for seq in seqs]
        lengths = np.array([self.n_tokens(len(raw)) for raw in raws], dtype=np.int64)
        width = int(lengths.max()) if len(raws) else 0
        tokens = np.full((len(raws), width), PAD, dtype=np.int64)
        groups: dict[int, list[int]] = {}
        for index, raw in enumerate(raws):
            groups.setdefault(len(raw), []).append(index)
        for n_bases, members in groups.items():
            joined = b"".join(raws[i] for i in members)
            rows = np.frombuffer(joined, dtype=np.uint8).reshape(len(members), n_bases)
            encoded = self._encode_rows(rows, joined)
            tokens[members, : encoded.shape[1]] = encoded
        return tokens, lengths

    def _encode_rows(self, rows: np.ndarray, raw: bytes | bytearray) -> np.ndarray:
        """Encode a (B, L) uint8 array of equal-length sequences; ``raw`` is the same bytes, row-major."""
        n_rows, length = rows.shape
        k, stride = self.k, self.stride
        n_grid, tail = self._grid(length)
        out = np.empty((n_rows, n_grid + tail), dtype=np.int64)
        if n_grid == 0:
            return out
        span = (n_grid - 1) * stride + 1  # slice length whose every stride-th element is a grid start
        codes = _base_codes(rows)
        # Horner's scheme over k shifted strided views: ids = ((c0*4 + c1)*4 + c2)... in uint16,
        # a quarter of the memory traffic of int64; widened once, when the special-token offset is added.
        ids = codes[:, 0:span:stride].astype(np.uint16)
        for j in range(1, k):
            ids <<= 2
            ids |= codes[:, j : j + span : stride]
        np.add(ids, _N_SPECIAL, out=out[:, :n_grid], dtype=np.int64)
        if tail:
            weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
            out[:, n_grid] = codes[:, length - k :] @ weights + _N_SPECIAL
        # Deleting the ACGT bytes is the cheapest full scan: an empty result proves there is nothing to
        # mask, so clean sequences skip the masking pass entirely.
        if raw.translate(None, _ACGT_BYTES):
            self._mask_unknown(raw, out, n_rows, length, n_grid, span, tail)
        return out

    def _mask_unknown(
        self,
        raw: bytes | bytearray,
        out: np.ndarray,
        n_rows: int,
        length: int,
        n_grid: int,
        span: int,
        tail: bool,
    ) -> None:
        """Set UNK wherever a k-mer window contains a non-ACGT byte.

        A window is bad if any of its k flags is set: k-1 ORs of shifted strided views, the same
        views the id computation uses. This equals a cumsum window difference, but works on 1-byte
        bools instead of an int32 prefix-sum array and so is faster and needs no extra large buffer.
        """
        k, stride = self.k, self.stride
        flags = np.frombuffer(raw.translate(_NOT_ACGT_TABLE), dtype=np.bool_).reshape(n_rows, length)
        bad = flags[:, 0:span:stride].copy()
        for j in range(1, k):
            bad |= flags[:, j : j + span : stride]
        np.putmask(out[:, :n_grid], bad, UNK)
        if tail:
            out[flags[:, length - k :].any(axis=1), n_grid] = UNK

    # ------------------------------------------------------------------ decoding
    def decode(self, tokens: Sequence[int] | np.ndarray) -> list[str]:
        """Token ids -> k-mer strings, or special-token names ("<pad>", "<unk>", ...)."""
        ids = np.asarray(tokens)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise InputFormatError(f"decode expects a 1-D sequence of integer ids, got shape {ids.shape}")
        out_of_range = np.flatnonzero((ids < 0) | (ids >= self.vocab_size))
        if out_of_range.size:
            first = int(out_of_range[0])
            raise InputFormatError(
                f"token id {int(ids[first])} at position {first} is outside the vocabulary (size {self.vocab_size})"
            )
        kmers = _kmer_strings(self.k)
        return [SPECIAL_TOKENS[i] if i < _N_SPECIAL else kmers[i - _N_SPECIAL] for i in ids.tolist()]

    # ------------------------------------------------------------------ vocabulary file
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; :meth:`from_dict` rebuilds an identical tokenizer from it."""
        return {
            "format": _VOCAB_FORMAT,
            "version": VOCAB_VERSION,
            "k": int(self.k),
            "stride": int(self.stride),
            "include_tail": bool(self.include_tail),
            "specials": list(SPECIAL_TOKENS),
            "alphabet": ALPHABET,
            "vocab_size": self.vocab_size,
        }

    @classmethod
    def from_dict(cls, data: Any) -> KmerTokenizer:
        """Rebuild from :meth:`to_dict` output; ConfigError on another version or any malformed field."""
        if not isinstance(data, dict):
            raise ConfigError(f"k-mer vocabulary must be a JSON object, got {type(data).__name__}")
        missing = sorted(_VOCAB_KEYS - data.keys())
        unknown = sorted(set(data) - _VOCAB_KEYS)
        if missing or unknown:
            raise ConfigError(f"k-mer vocabulary: missing keys {missing}, unknown keys {unknown}")
        if data["format"] != _VOCAB_FORMAT:
            raise ConfigError(f"k-mer vocabulary: format is {data['format']!r}, expected {_VOCAB_FORMAT!r}")
        if not _is_int(data["version"]) or data["version"] != VOCAB_VERSION:
            raise ConfigError(
                f"k-mer vocabulary version {data['version']!r} is not supported (this genolm reads version "
                f"{VOCAB_VERSION}); re-run tokenization"
            )
        if data["specials"] != list(SPECIAL_TOKENS):
            raise ConfigError(f"k-mer vocabulary: specials {data['specials']!r} != {list(SPECIAL_TOKENS)}")
        if data["alphabet"] != ALPHABET:
            raise ConfigError(f"k-mer vocabulary: alphabet {data['alphabet']!r} != {ALPHABET!r}")
        tokenizer = cls(k=data["k"], stride=data["stride"], include_tail=data["include_tail"])
        if data["vocab_size"] != tokenizer.vocab_size:
            raise ConfigError(
                f"k-mer vocabulary: vocab_size {data['vocab_size']!r} does not match k={tokenizer.k} "
                f"({tokenizer.vocab_size})"
            )
        return tokenizer

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        with atomic_writer(path) as handle:
            handle.write(text.encode("utf-8"))
        log.debug("wrote k-mer vocabulary %s (k=%d, stride=%d)", path, self.k, self.stride)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KmerTokenizer:
        """Read a vocabulary written by :meth:`save`; ConfigError naming the file if it is unusable."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read k-mer vocabulary: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
