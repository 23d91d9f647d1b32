"""Vectorised k-mer tokenizer: DNA string -> int64 token ids, with a versioned JSON vocabulary.

Token ids: 0..3 are the special tokens, and a k-mer's id is ``4 + its base-4 number`` with A=0, C=1,
G=2, T=3 and the first base most significant (``"AC"`` -> 4 + 0*4 + 1 = 5). Soft-masked (lower-case)
bases give the same ids as upper-case ones.

A k-mer that touches any byte other than ACGT/acgt (N, IUPAC codes, gaps, junk) is handled by the
tokenizer's ``unknown`` policy: ``"unk"`` emits ``UNK`` in its place (one token per start, so token ``i``
still starts at ``token_starts(L)[i]``); ``"skip"`` drops it, so the output is shorter and token ``i`` no
longer sits at a fixed offset (:meth:`KmerTokenizer.encode_with_starts` returns the kept starts); ``"error"``
raises :class:`~genolm.errors.InputFormatError` naming the record and the 1-based position of the first
offending base. The policy is saved with the vocabulary.

:meth:`KmerTokenizer.encode_stream` encodes a sequence given as consecutive chunks with bounded memory and
returns exactly what :meth:`KmerTokenizer.encode` returns for the joined sequence.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
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
    "UNKNOWN_POLICIES",
    "VOCAB_VERSION",
    "KmerTokenizer",
]

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<pad>", "<unk>", "<mask>", "<cls>")
PAD, UNK, MASK, CLS = 0, 1, 2, 3
ALPHABET = "ACGT"
# Version 2 added "unknown"; version-1 files (no such key) still load, with the policy they were made with ("unk").
VOCAB_VERSION = 2
MAX_K = 8  # 4**8 k-mers still fit the uint16 working array used by the encoder
UNKNOWN_POLICIES = ("unk", "skip", "error")
_N_SPECIAL = len(SPECIAL_TOKENS)
_VOCAB_FORMAT = "genolm-kmer-vocab"
_VOCAB_KEYS_V1 = frozenset({"format", "version", "k", "stride", "include_tail", "specials", "alphabet", "vocab_size"})
_VOCAB_KEYS = {1: _VOCAB_KEYS_V1, 2: _VOCAB_KEYS_V1 | {"unknown"}}

_ACGT_BYTES = (ALPHABET + ALPHABET.lower()).encode("ascii")
# Byte -> 1 if it is not A/C/G/T in either case, else 0: a lookup table for bytes.translate, which
# applies it at C speed (~2x faster than a numpy gather); the result is viewed as a bool array.
_NOT_ACGT_TABLE = bytes(0 if byte in _ACGT_BYTES else 1 for byte in range(256))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@functools.cache
def _reverse_complement_table(k: int) -> np.ndarray:
    """id -> id of the reverse-complement k-mer (special tokens map to themselves), as int64."""
    codes = np.arange(4**k, dtype=np.int64)
    rc = np.zeros_like(codes)
    for j in range(k):  # last base first: its complement becomes the first (most significant) base
        rc = rc * 4 + (3 - ((codes >> (2 * j)) & 3))
    table = np.concatenate([np.arange(_N_SPECIAL, dtype=np.int64), rc + _N_SPECIAL])
    table.flags.writeable = False
    return table


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
    ``unknown``: what happens to a k-mer touching a non-ACGT byte, one of :data:`UNKNOWN_POLICIES` (see the
    module docstring). A base that no emitted k-mer covers (possible only when ``stride > k`` or without the
    tail) is never looked at, under any policy.
    """

    k: int
    stride: int = 1
    include_tail: bool = True
    unknown: str = "unk"

    def __post_init__(self) -> None:
        if not _is_int(self.k) or not 1 <= self.k <= MAX_K:
            raise ConfigError(f"k-mer size k must be an integer in 1..{MAX_K}, got {self.k!r}")
        if not _is_int(self.stride) or self.stride < 1:
            raise ConfigError(f"k-mer stride must be an integer >= 1, got {self.stride!r}")
        if not isinstance(self.include_tail, bool | np.bool_):
            raise ConfigError(f"include_tail must be a boolean, got {self.include_tail!r}")
        if self.unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown must be one of {list(UNKNOWN_POLICIES)}, got {self.unknown!r}")

    @property
    def vocab_size(self) -> int:
        return _N_SPECIAL + 4**self.k

    @property
    def storage_dtype(self) -> np.dtype:
        """Smallest dtype that holds every id: uint16 up to k=7, int32 for k=8 (65,540 ids)."""
        return np.dtype(np.uint16) if self.vocab_size <= 1 << 16 else np.dtype(np.int32)

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
        """Number of k-mer starts in a sequence of ``length`` bases: what :meth:`encode` returns, except that
        ``unknown="skip"`` returns fewer when k-mers were dropped."""
        n_grid, tail = self._grid(length)
        return n_grid + tail

    def token_starts(self, length: int) -> np.ndarray:
        """0-based offset of each k-mer start, for a sequence of ``length`` bases (int64); with
        ``unknown="skip"`` use :meth:`encode_with_starts` for the starts of the tokens actually kept."""
        n_grid, tail = self._grid(length)
        starts = np.arange(n_grid + tail, dtype=np.int64) * self.stride
        if tail:
            starts[-1] = length - self.k
        return starts

    # ------------------------------------------------------------------ encoding
    def encode(self, seq: str | bytes, *, name: str | None = None) -> np.ndarray:
        """Token ids (int64, one per k-mer start, see ``unknown``); empty when ``len(seq) < k``.

        ``name`` is the record named in the error raised under ``unknown="error"``.
        """
        return self.encode_with_starts(seq, name=name)[0] if self.unknown == "skip" else self._encode(seq, name)

    def encode_with_starts(self, seq: str | bytes, *, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, 0-based start of each token) as int64; the starts matter under ``unknown="skip"``."""
        raw = _as_bytes(seq)
        ids = self._encode_unk(raw)
        starts = self.token_starts(len(raw))
        if self.unknown == "unk":
            return ids, starts
        bad = ids == UNK
        if not bad.any():
            return ids, starts
        if self.unknown == "error":
            self._raise_unknown(raw, int(starts[np.argmax(bad)]), 0, name)
        keep = ~bad
        return ids[keep], starts[keep]

    def _encode(self, seq: str | bytes, name: str | None) -> np.ndarray:
        raw = _as_bytes(seq)
        ids = self._encode_unk(raw)
        if self.unknown == "error" and UNK in ids:
            self._raise_unknown(raw, int(self.token_starts(len(raw))[np.argmax(ids == UNK)]), 0, name)
        return ids

    def _encode_unk(self, raw: bytes | bytearray, dtype: np.dtype | type = np.int64) -> np.ndarray:
        """Encode with the "unk" policy (every start kept, UNK where a window is bad)."""
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(1, len(raw))
        return self._encode_rows(rows, raw, dtype)[0]

    def _raise_unknown(self, raw: bytes | bytearray, start: int, offset: int, name: str | None) -> None:
        """InputFormatError for the first non-ACGT byte of the window at ``raw[start:start + k]``.

        ``offset`` is the position of ``raw[0]`` in the whole sequence (non-zero when streaming).
        """
        window = raw[start : start + self.k]
        first = window.translate(_NOT_ACGT_TABLE).index(1)
        position = offset + start + first + 1
        where = "sequence" if name is None else f"record '{name}'"
        raise InputFormatError(
            f"{where}: non-ACGT base {chr(window[first])!r} at position {position} (1-based) is inside a "
            f"{self.k}-mer, and the tokenizer was built with unknown='error' (use 'unk' or 'skip' to accept it)"
        )

    def encode_batch(
        self, seqs: Sequence[str | bytes], names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode many sequences: (tokens[B, Tmax] right-padded with PAD, lengths[B]) as int64.

        Sequences of equal length are encoded together as one 2-D array, which makes batches of
        fixed-size windows (the common case) cost one vectorised pass instead of B Python calls.
        ``names`` (one per sequence) are used in the error raised under ``unknown="error"``.
        """
        raws = [_as_bytes(seq) for seq in seqs]
        if names is not None and len(names) != len(raws):
            raise InputFormatError(f"encode_batch: {len(names)} names for {len(raws)} sequences")
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
        if self.unknown == "unk" or not width:
            return tokens, lengths
        with_unk = np.flatnonzero((tokens == UNK).any(axis=1))
        if self.unknown == "error" and with_unk.size:
            row = int(with_unk[0])
            start = int(self.token_starts(len(raws[row]))[np.argmax(tokens[row] == UNK)])
            self._raise_unknown(raws[row], start, 0, None if names is None else names[row])
        for row in with_unk:  # "skip": compact the row, then pad it again
            kept = tokens[row, : lengths[row]]
            kept = kept[kept != UNK]
            tokens[row, : kept.size] = kept
            tokens[row, kept.size :] = PAD
            lengths[row] = kept.size
        return tokens[:, : int(lengths.max())], lengths

    def encode_stream(
        self, chunks: Iterable[str | bytes], *, name: str | None = None, dtype: np.dtype | type = np.int64
    ) -> Iterator[np.ndarray]:
        """Encode one sequence given as consecutive chunks; yields arrays of token ids.

        Concatenated, the arrays equal ``encode("".join(chunks))`` for any chunk sizes (also below k), stride,
        tail rule and ``unknown`` policy; under ``"error"`` the position named is the one in the whole sequence.
        Only the last ``max(k, chunk length)`` bases plus one chunk are held: between chunks the encoder
        carries the unconsumed bases from the next grid start on (at least the last k, for the tail token).
        ``dtype`` is the id type of the yielded arrays (e.g. :attr:`storage_dtype`).
        """
        k, stride = self.k, self.stride
        dtype = np.dtype(dtype)
        if dtype != np.int64 and np.iinfo(dtype).max < self.vocab_size - 1:
            raise ConfigError(f"encode_stream: dtype {dtype} cannot hold ids up to {self.vocab_size - 1}")
        grid = KmerTokenizer(k, stride=stride, include_tail=False)
        carry = b""
        offset = 0  # position of carry[0] in the whole sequence
        next_start = 0  # position of the next grid start not yet encoded
        for chunk in chunks:
            raw = _as_bytes(chunk)
            if not raw:
                continue
            buf = carry + raw if carry else bytes(raw)
            rel = next_start - offset
            if len(buf) - rel >= k:
                window = buf[rel:]
                start = next_start
                ids = grid._encode_unk(window, dtype)
                next_start += ids.size * stride
                ids = self._stream_policy(ids, window, stride, start, name)
                if ids.size:
                    yield ids
            keep = max(0, min(next_start - offset, len(buf) - k))
            carry = buf[keep:]
            offset += keep
        length = offset + len(carry)
        if self.include_tail and length >= k and (length - k) % stride:
            window = carry[-k:]
            ids = self._stream_policy(grid._encode_unk(window, dtype), window, 0, length - k, name)
            if ids.size:
                yield ids

    def _stream_policy(self, ids: np.ndarray, raw: bytes, step: int, offset: int, name: str | None) -> np.ndarray:
        """Apply ``unknown`` to ids encoded from ``raw`` (token i starts at ``i * step``; ``raw[0]`` at ``offset``)."""
        if self.unknown == "unk":
            return ids
        bad = ids == UNK
        if not bad.any():
            return ids
        if self.unknown == "error":
            self._raise_unknown(raw, int(np.argmax(bad)) * step, offset, name)
        return ids[~bad]

    def reverse_complement_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens of the reverse-complement strand from those of the forward strand (stride 1 only).

        With stride 1 every start is kept, so the minus strand's k-mers are the forward ones, reversed and each
        reverse-complemented; a window with a non-ACGT byte is bad on both strands, so this holds under every
        ``unknown`` policy. Non-ACGT bytes are never complemented into ACGT here (``U`` stays unknown).
        """
        if self.stride != 1:
            raise ConfigError(f"reverse_complement_tokens needs stride 1, got stride {self.stride}")
        ids = np.asarray(tokens)
        table = _reverse_complement_table(self.k)
        if np.iinfo(ids.dtype).max >= self.vocab_size - 1:
            table = table.astype(ids.dtype)  # 4**k entries; spares a block-sized int64 temporary
        return table[ids[::-1]].astype(ids.dtype, copy=False)

    def _encode_rows(self, rows: np.ndarray, raw: bytes | bytearray, dtype: np.dtype | type = np.int64) -> np.ndarray:
        """Encode a (B, L) uint8 array of equal-length sequences; ``raw`` is the same bytes, row-major.

        Always the "unk" policy: the public methods apply ``unknown`` to the result.
        """
        n_rows, length = rows.shape
        k, stride = self.k, self.stride
        n_grid, tail = self._grid(length)
        out = np.empty((n_rows, n_grid + tail), dtype=dtype)
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
        np.add(ids, _N_SPECIAL, out=out[:, :n_grid], dtype=out.dtype)
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
            "unknown": self.unknown,
        }

    @classmethod
    def from_dict(cls, data: Any) -> KmerTokenizer:
        """Rebuild from :meth:`to_dict` output; ConfigError on another version or any malformed field.

        Version-1 dictionaries (written before the ``unknown`` policy existed) load with ``unknown="unk"``.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"k-mer vocabulary must be a JSON object, got {type(data).__name__}")
        version = data.get("version")
        expected = _VOCAB_KEYS[version if _is_int(version) and version in _VOCAB_KEYS else VOCAB_VERSION]
        missing = sorted(expected - data.keys())
        unknown = sorted(set(data) - expected)
        if missing or unknown:
            raise ConfigError(f"k-mer vocabulary: missing keys {missing}, unknown keys {unknown}")
        if data["format"] != _VOCAB_FORMAT:
            raise ConfigError(f"k-mer vocabulary: format is {data['format']!r}, expected {_VOCAB_FORMAT!r}")
        if not _is_int(version) or version not in _VOCAB_KEYS:
            raise ConfigError(
                f"k-mer vocabulary version {version!r} is not supported (this genolm reads versions "
                f"{', '.join(map(str, sorted(_VOCAB_KEYS)))}); re-run tokenization"
            )
        if data["specials"] != list(SPECIAL_TOKENS):
            raise ConfigError(f"k-mer vocabulary: specials {data['specials']!r} != {list(SPECIAL_TOKENS)}")
        if data["alphabet"] != ALPHABET:
            raise ConfigError(f"k-mer vocabulary: alphabet {data['alphabet']!r} != {ALPHABET!r}")
        tokenizer = cls(
            k=data["k"], stride=data["stride"], include_tail=data["include_tail"], unknown=data.get("unknown", "unk")
        )
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
        log.debug("wrote k-mer vocabulary %s (k=%d, stride=%d, unknown=%s)", path, self.k, self.stride, self.unknown)

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
