"""Labelled task tables and their token arrays: read, validate, tokenize, summarise.

A task table is a TSV with columns id, label, split, contig, start, end, strand, sequence (0-based half-open
coordinates; the sequence is already oriented on `strand`). Token arrays are compressed .npz files that carry
their vocabulary, so tokens can never be decoded with the wrong one. Genomes (language-model corpora) and
FASTQ reads are tokenized with bounded memory by :mod:`genolm.streaming`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.atomic import atomic_writer
from genolm.errors import InputFormatError
from genolm.kmers import KmerTokenizer
from genolm.seqio import reverse_complement
from genolm.streaming import DEFAULT_CHUNK_BP, StreamSummary, write_corpus, write_read_tokens

TASK_COLUMNS = ("id", "label", "split", "contig", "start", "end", "strand", "sequence")
SPLITS = ("train", "valid", "test")
_VALID_BASES = frozenset("ACGTRYSWKMBDHVN")


@dataclass
class TokenSet:
    """Padded token matrix of a labelled sequence set (one row per sequence, PAD after `lengths[i]`)."""

    tokens: np.ndarray  # int64 [N, T]
    lengths: np.ndarray  # int64 [N]
    labels: np.ndarray  # int64 [N], 0/1
    ids: list[str]
    bp_lengths: np.ndarray | None = None  # int64 [N]: lengths in bases, so a model knows its window in bp
    source: str = field(default="token set", compare=False)  # file it came from, named in error messages

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        for name in ("tokens", "lengths", "labels"):
            value = np.asarray(getattr(self, name))
            if not np.issubdtype(value.dtype, np.integer):
                raise InputFormatError(f"{self.source}: '{name}' must be integers, got {value.dtype}")
            setattr(self, name, value.astype(np.int64, copy=False))
        if self.bp_lengths is not None:
            self.bp_lengths = np.asarray(self.bp_lengths).astype(np.int64, copy=False)
        self._validate()

    def _validate(self) -> None:
        """Raise InputFormatError naming the source if shapes or values are inconsistent."""
        source = self.source
        if self.tokens.ndim != 2:
            raise InputFormatError(f"{source}: 'tokens' must be 2-D, got shape {self.tokens.shape}")
        n = self.tokens.shape[0]
        columns = (("lengths", self.lengths), ("labels", self.labels), ("ids", self.ids))
        if self.bp_lengths is not None:
            columns += (("bp_lengths", self.bp_lengths),)
        for name, values in columns:
            if len(values) != n or (isinstance(values, np.ndarray) and values.ndim != 1):
                raise InputFormatError(f"{source}: '{name}' must have one entry per row ({n})")
        if n and (self.lengths.min() < 0 or self.lengths.max() > self.tokens.shape[1]):
            bad = int(np.flatnonzero((self.lengths < 0) | (self.lengths > self.tokens.shape[1]))[0])
            raise InputFormatError(
                f"{source}: record '{self.ids[bad]}' has length {self.lengths[bad]} outside 0..{self.tokens.shape[1]}"
            )
        if n and not np.isin(self.labels, (0, 1)).all():
            bad = int(np.flatnonzero(~np.isin(self.labels, (0, 1)))[0])
            raise InputFormatError(f"{source}: record '{self.ids[bad]}' has label {self.labels[bad]}, not 0/1")
        if self.tokens.size and self.tokens.min() < 0:
            raise InputFormatError(f"{source}: negative token ids")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def subset(self, indices: np.ndarray | Sequence[int]) -> TokenSet:
        idx = np.asarray(indices, dtype=np.int64)
        return TokenSet(
            self.tokens[idx],
            self.lengths[idx],
            self.labels[idx],
            [self.ids[i] for i in idx],
            None if self.bp_lengths is None else self.bp_lengths[idx],
            source=self.source,
        )


def _bp_lengths(token_set: TokenSet) -> np.ndarray:
    if token_set.bp_lengths is None:
        raise InputFormatError(f"{token_set.source}: token set has no base-pair lengths to save")
    return token_set.bp_lengths


def save_token_set(token_set: TokenSet, path: str | Path, tokenizer: KmerTokenizer) -> None:
    with atomic_writer(path) as handle:
        np.savez_compressed(
            handle,
            tokens=token_set.tokens.astype(np.int64, copy=False),
            lengths=token_set.lengths.astype(np.int64, copy=False),
            labels=token_set.labels.astype(np.int64, copy=False),
            ids=np.asarray(token_set.ids, dtype=np.str_),
            bp_lengths=_bp_lengths(token_set),
            vocab=np.asarray(json.dumps(tokenizer.to_dict(), sort_keys=True)),
        )


def load_token_set(path: str | Path) -> tuple[TokenSet, KmerTokenizer]:
    """Load a split's tokens with the tokenizer they were made with (no pickle)."""
    keys = ("tokens", "lengths", "labels", "ids", "bp_lengths")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in (*keys, "vocab") if key not in data.files]
            if missing:
                raise InputFormatError(f"{path}: token array lacks {', '.join(missing)}")
            arrays = {key: data[key] for key in keys}
            tokenizer = KmerTokenizer.from_dict(json.loads(str(data["vocab"])))
    except (OSError, ValueError) as error:
        if isinstance(error, InputFormatError):
            raise
        raise InputFormatError(f"{path}: not a genolm token array ({error})") from error
    arrays["ids"] = [str(x) for x in arrays["ids"]]
    return TokenSet(**arrays, source=str(path)), tokenizer


def read_task_table(path: str | Path, split: str | None = None) -> pd.DataFrame:
    """Read and check a task table; every problem names the file and the record."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"id": str, "contig": str, "sequence": str, "strand": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputFormatError(f"{path}: cannot read task table ({error})") from error
    missing = [column for column in TASK_COLUMNS if column not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(TASK_COLUMNS)}")
    if table.empty:
        raise InputFormatError(f"{path}: no records")
    duplicated = table["id"][table["id"].duplicated()]
    if not duplicated.empty:
        raise InputFormatError(f"{path}: duplicate record id '{duplicated.iloc[0]}'")
    for row in table.itertuples(index=False):
        where = f"{path}: record '{row.id}'"
        if row.label not in (0, 1):
            raise InputFormatError(f"{where}: label must be 0 or 1, got {row.label!r}")
        if split is not None and row.split != split:
            raise InputFormatError(f"{where}: split is '{row.split}' but the file is the {split} split")
        if not isinstance(row.sequence, str) or not row.sequence:
            raise InputFormatError(f"{where}: empty sequence")
        bad = set(row.sequence) - _VALID_BASES
        if bad:
            raise InputFormatError(f"{where}: invalid base(s) {''.join(sorted(bad))!r} (expected upper-case IUPAC)")
    return table


def tokenize_sequences(
    ids: Sequence[str], sequences: Sequence[str], labels: Sequence[int], tokenizer: KmerTokenizer
) -> TokenSet:
    tokens, lengths = tokenizer.encode_batch(list(sequences), names=[str(name) for name in ids])
    return TokenSet(
        tokens=tokens.astype(np.int64, copy=False),
        lengths=lengths.astype(np.int64, copy=False),
        labels=np.asarray(labels, dtype=np.int64),
        ids=list(ids),
        bp_lengths=np.fromiter((len(seq) for seq in sequences), dtype=np.int64, count=len(sequences)),
    )


def tokenize_table(table: pd.DataFrame, tokenizer: KmerTokenizer, augment_reverse_complement: bool) -> TokenSet:
    """Tokenize a split; strand-agnostic tasks add each sequence's reverse complement (training only)."""
    ids, sequences, labels = list(table["id"]), list(table["sequence"]), list(table["label"])
    if augment_reverse_complement:
        ids += [f"{name}/rc" for name in table["id"]]
        sequences += [reverse_complement(seq) for seq in table["sequence"]]
        labels += list(table["label"])
    return tokenize_sequences(ids, sequences, labels, tokenizer)


def tokenize_task(
    tables: Mapping[str, str | Path],
    arrays: Mapping[str, str | Path],
    vocab_path: str | Path,
    k: int,
    stride: int,
    augment_reverse_complement: bool = False,
) -> None:
    """Tokenize the train/valid/test tables of one task into .npz arrays plus the vocabulary JSON."""
    tokenizer = KmerTokenizer(k=k, stride=stride)
    checked = {split: read_task_table(tables[split], split) for split in SPLITS}
    for split in SPLITS:
        augment = augment_reverse_complement and split == "train"
        save_token_set(tokenize_table(checked[split], tokenizer, augment), arrays[split], tokenizer)
    tokenizer.save(vocab_path)


def tokenize_genome(
    fasta: str | Path,
    corpus_path: str | Path,
    k: int,
    stride: int,
    *,
    unknown: str = "unk",
    chunk_bp: int = DEFAULT_CHUNK_BP,
    compress: bool = False,
) -> StreamSummary:
    """Language-model corpus: one token stream per contig and strand; contigs are never joined.

    Streams the FASTA ``chunk_bp`` bases at a time, so memory stays bounded whatever the chromosome size;
    tokens are stored as uint16 (int32 for k=8). See :mod:`genolm.streaming` for the layout and for how the
    minus strand is made.
    """
    tokenizer = KmerTokenizer(k=k, stride=stride, unknown=unknown)
    return write_corpus(fasta, corpus_path, tokenizer, chunk_bp=chunk_bp, compress=compress)


def _open_token_npz(path: str | Path, keys: tuple[str, ...], kind: str) -> tuple[dict[str, np.ndarray], KmerTokenizer]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in keys}
            tokenizer = KmerTokenizer.from_dict(json.loads(str(data["vocab"])))
    except (OSError, KeyError, ValueError) as error:
        if isinstance(error, InputFormatError):
            raise
        raise InputFormatError(f"{path}: not a genolm {kind} ({error})") from error
    offsets, tokens = arrays["offsets"], arrays["tokens"]
    if (
        offsets.ndim != 1
        or not offsets.size
        or offsets[0] != 0
        or offsets[-1] != tokens.size
        or (np.diff(offsets) < 0).any()
    ):
        raise InputFormatError(f"{path}: offsets do not partition the {tokens.size} tokens of this {kind}")
    return arrays, tokenizer


def load_corpus(path: str | Path) -> tuple[list[np.ndarray], KmerTokenizer]:
    """Per-contig-strand token streams (int64) of a corpus file with their tokenizer.

    Reads corpora stored as int32 (older files) as well as uint16.
    """
    arrays, tokenizer = _open_token_npz(path, ("tokens", "offsets"), "corpus")
    tokens = arrays["tokens"].astype(np.int64)
    return [tokens[start:end] for start, end in itertools.pairwise(arrays["offsets"])], tokenizer


def tokenize_fastq(
    fastq: str | Path, out: str | Path, k: int, stride: int = 1, *, unknown: str = "unk"
) -> StreamSummary:
    """Tokenize every read of a FASTQ into a ragged token file (see :func:`load_read_tokens`), streaming."""
    return write_read_tokens(fastq, out, KmerTokenizer(k=k, stride=stride, unknown=unknown))


@dataclass
class ReadTokens:
    """Ragged per-read tokens: read i is ``tokens[offsets[i]:offsets[i + 1]]`` (stored dtype, uint16 or int32)."""

    tokens: np.ndarray
    offsets: np.ndarray  # int64 [N + 1]
    names: list[str]
    bp_lengths: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]


def load_read_tokens(path: str | Path) -> tuple[ReadTokens, KmerTokenizer]:
    """Load a file written by :func:`tokenize_fastq` with the tokenizer it was made with."""
    arrays, tokenizer = _open_token_npz(path, ("tokens", "offsets", "names", "bp_lengths"), "read-token file")
    names = [str(name) for name in arrays["names"]]
    if len(names) != arrays["offsets"].size - 1 or arrays["bp_lengths"].shape != (len(names),):
        raise InputFormatError(f"{path}: names, offsets and bp_lengths disagree on the number of reads")
    return ReadTokens(arrays["tokens"], arrays["offsets"].astype(np.int64), names, arrays["bp_lengths"]), tokenizer


def gc_fraction(sequence: str) -> float:
    """GC over unambiguous bases (N and IUPAC codes are excluded from the denominator)."""
    gc = sequence.count("G") + sequence.count("C")
    at = sequence.count("A") + sequence.count("T")
    return gc / (gc + at) if gc + at else float("nan")


def summarize_tables(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Counts per task, split and class with length and GC distribution."""
    rows = []
    for task, table in tables.items():
        table = table.reset_index(drop=True)  # tables concatenated from several splits repeat index labels
        gc = table["sequence"].map(gc_fraction)
        lengths = table["sequence"].str.len()
        for (split, label), index in table.groupby(["split", "label"]).groups.items():
            rows.append(
                {
                    "task": task,
                    "split": split,
                    "label": int(label),
                    "count": len(index),
                    "length_min": int(lengths[index].min()),
                    "length_median": float(lengths[index].median()),
                    "length_max": int(lengths[index].max()),
                    "gc_mean": round(float(gc[index].mean()), 4),
                    "gc_sd": round(float(gc[index].std(ddof=0)), 4),
                }
            )
    order = {split: i for i, split in enumerate(SPLITS)}
    summary = pd.DataFrame(rows)
    return summary.sort_values(
        ["task", "split", "label"], key=lambda column: column.map(order) if column.name == "split" else column
    )
