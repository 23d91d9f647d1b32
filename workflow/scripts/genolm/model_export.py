"""Exported models: a trained classifier as a self-describing folder that loads in three lines of Python.

A folder holds the checkpoint exactly as training wrote it (``model.safetensors`` + its ``model.json`` sidecar,
read by :func:`genolm.checkpoint.load_checkpoint`, so there is one weights format and one loader), a model card
``card.json`` (task kind and strand-specificity, window, validation threshold, test metrics with CIs, training
data with checksums, intended use and limitations, versions, seed, config) and the same card as ``README.md``.
The card lists the SHA-256 of every other file; loading checks them all, so a missing or edited file fails with
a message naming it. Nothing is unpickled: only JSON and safetensors are parsed.

```python
import genolm
model = genolm.load_model("results/export/promoter_cnn")
probs = model.predict(["ACGT..."])   # also model.embed(seqs) and model.scan(fasta, outdir)
```
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path, write_text_atomic
from genolm.errors import CheckpointError, InputFormatError
from genolm.provenance import package_versions, sha256_file
from genolm.scan import CALL_DEFAULTS

log = logging.getLogger(__name__)

CARD_FORMAT = "genolm-model-card"
CARD_VERSION = 1
CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
SIDECAR_FILE = "model.json"
README_FILE = "README.md"
# What each task builder's data is, for the card's training-data and limitations sections.
SOURCE_DESCRIPTIONS = {
    "demo": "windows of genolm's synthetic demo genome (simulated promoters and IS families, not real biology)",
    "cnnprom_ecoli": "E. coli sigma70 promoters and non-promoters of CNNProm (Umarov & Solovyev 2017)",
    "cnnprom_bsubtilis": "B. subtilis promoters and non-promoters of CNNProm (Umarov & Solovyev 2017)",
    "ipromoter2l_ecoli": "E. coli sigma70 promoters and non-promoters of iPromoter-2L (Liu et al. 2018)",
    "regulondb_sigma70": "E. coli K-12 MG1655 sigma70 promoters of RegulonDB against genomic windows far from any TSS",
    "genomic_benchmarks_human_nontata": "human non-TATA promoters of Genomic Benchmarks",
    "ulmfit_cds_ecoli": "E. coli K-12 MG1655 promoter windows against coding sequence (the ULMFiT genomic task)",
    "isfinder_amr": "ISfinder IS elements against E. coli MG1655 and AMR-plasmid sequence outside IS elements",
}


def _json_ready(value: Any) -> Any:
    """Config values as plain JSON (Snakemake hands over its own mapping and list types)."""
    return json.loads(json.dumps(value, default=str))


def _table_summary(split: str, path: str | Path) -> dict[str, Any]:
    table = pd.read_csv(path, sep="\t", usecols=["id", "label"])
    return {
        "split": split,
        "file": Path(path).name,
        "sha256": sha256_file(path),
        "rows": len(table),
        "positives": int((table["label"] == 1).sum()),
        "negatives": int((table["label"] == 0).sum()),
    }


def _test_metrics(metrics: str | Path) -> tuple[float, list[dict[str, Any]]]:
    """(validation threshold, test metric rows with their bootstrap CIs) of evaluate's metrics.tsv."""
    from genolm.evaluate import threshold_from_metrics

    threshold = threshold_from_metrics(metrics)
    table = pd.read_csv(metrics, sep="\t")
    rows = []
    for row in table.itertuples(index=False):
        if row.metric == "threshold":
            continue
        rows.append(
            {
                "metric": str(row.metric),
                "value": None if pd.isna(row.value) else float(row.value),
                "ci_low": None if pd.isna(row.ci_low) else float(row.ci_low),
                "ci_high": None if pd.isna(row.ci_high) else float(row.ci_high),
            }
        )
    return threshold, rows


def intended_use(kind: str, source: str, window_bp: int) -> str:
    what = "sigma70-type promoters (TSS windows)" if kind == "promoter" else "insertion-sequence (IS) elements"
    return (
        f"Scoring {window_bp} bp windows of bacterial DNA for {what}, and scanning bacterial genomes or plasmids "
        f"on both strands for candidate {'TSSs' if kind == 'promoter' else 'IS elements'} "
        f"(model.scan / `genolm scan --model`). Trained on: {SOURCE_DESCRIPTIONS.get(source, source)}."
    )


def limitations(kind: str, strand_specific: bool, source: str, threshold_metric: str) -> list[str]:
    notes = []
    if strand_specific:
        notes.append(
            "Strand-specific: a window is scored on the strand it is given; genome scans score each strand apart. "
            "Give sequences 5'->3' on the strand of interest."
        )
    else:
        notes.append("Strand-agnostic: trained with reverse-complement augmentation; scans keep the better strand.")
    if kind == "promoter":
        notes.append(
            "Learnt from bacterial promoters of one organism and sigma factor class (see training data); other "
            "sigma factors, other bacteria and eukaryotic promoters are out of scope."
        )
    else:
        notes.append(
            "Calls IS content, not the IS family; bacterial IS elements only, not eukaryotic transposons. Element "
            "ends are refined with terminal inverted repeats in scans, not by the model."
        )
    if source == "demo":
        notes.append("Trained on a synthetic genome: for testing the software only, never for biological claims.")
    notes.append(
        f"The threshold maximises {threshold_metric} on the validation split; precision on a new genome depends on "
        "how rare the elements are there, so expect more false calls per true one than the test split shows."
    )
    return notes


def build_card(
    meta: Mapping[str, Any],
    metrics: str | Path,
    name: str,
    task_name: str,
    task: Mapping[str, Any],
    model_name: str,
    model_settings: Mapping[str, Any] | None = None,
    tables: Mapping[str, str | Path] | None = None,
    seed: int | None = None,
    threshold_metric: str = "mcc",
) -> dict[str, Any]:
    """The model card of a checkpoint (its checked sidecar `meta`) and its evaluation table `metrics`."""
    trained_on = meta.get("task") or {}
    kind = task.get("kind") or trained_on.get("kind")
    if kind not in ("promoter", "is"):
        raise CheckpointError(f"{name}: the task kind is unknown (neither the config nor the checkpoint says it)")
    strand_specific = bool(task.get("strand_specific", trained_on.get("strand_specific", kind == "promoter")))
    source = str(task.get("source", "unknown"))
    threshold, test_metrics = _test_metrics(metrics)
    train = meta.get("train") or {}
    return {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "name": name,
        "model": {
            "name": model_name,
            "arch": meta["arch"],
            "params": meta["params"],
            "vocab": meta["vocab"],
            "vocab_size": meta["vocab_size"],
            "window_bp": int(meta["window_bp"]),
            "weights": WEIGHTS_FILE,
            "sidecar": SIDECAR_FILE,
        },
        "task": {
            "name": task_name,
            "kind": kind,
            "strand_specific": strand_specific,
            "source": source,
            "scan": {**CALL_DEFAULTS, **_json_ready(task.get("scan") or {})},
        },
        "threshold": {"value": threshold, "chosen_by": f"maximum {threshold_metric} on the validation split"},
        "test_metrics": test_metrics,
        "training_data": {
            "task": task_name,
            "source": source,
            "description": SOURCE_DESCRIPTIONS.get(source, source),
            "tables": [_table_summary(split, path) for split, path in (tables or {}).items()],
        },
        "intended_use": intended_use(kind, source, int(meta["window_bp"])),
        "limitations": limitations(kind, strand_specific, source, threshold_metric),
        "training": {
            "seed": seed if seed is not None else train.get("seed"),
            "best_epoch": meta.get("best_epoch"),
            "best_valid_loss": meta.get("best_valid_loss"),
        },
        "config": {"task": _json_ready(task), "model": _json_ready(model_settings or {})},
        "versions": {"trained_with": meta.get("versions", {}), "exported_with": package_versions()},
    }


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def card_markdown(card: Mapping[str, Any]) -> str:
    """The human-readable model card (README.md of the folder)."""
    model, task = card["model"], card["task"]
    lines = [
        f"# genolm model `{card['name']}`",
        "",
        f"A `{model['arch']}` classifier for the `{task['name']}` task ({task['kind']}, "
        f"{'strand-specific' if task['strand_specific'] else 'strand-agnostic'}), scoring {model['window_bp']} bp "
        f"windows. Decision threshold {card['threshold']['value']:.6g} ({card['threshold']['chosen_by']}).",
        "",
        "```python",
        "import genolm",
        f'model = genolm.load_model("{card["name"]}")  # this folder',
        'probs = model.predict(["ACGT..."])  # also model.embed(seqs) and model.scan(fasta, outdir)',
        "```",
        "",
        "Command line: `genolm predict --model DIR --fasta seqs.fa -o out.tsv`, "
        "`genolm scan genome.fa --model DIR -o scan/`, `genolm embed --model DIR --fasta seqs.fa -o emb.tsv.gz`.",
        "",
        "## Intended use",
        "",
        card["intended_use"],
        "",
        "## Limitations",
        "",
        *[f"- {note}" for note in card["limitations"]],
        "",
        "## Test metrics (95% bootstrap CI)",
        "",
        "| metric | value | CI low | CI high |",
        "|---|---|---|---|",
        *[
            f"| {row['metric']} | {_fmt(row['value'])} | {_fmt(row['ci_low'])} | {_fmt(row['ci_high'])} |"
            for row in card["test_metrics"]
        ],
        "",
        "## Training data",
        "",
        f"Task `{card['training_data']['task']}` from source `{card['training_data']['source']}`: "
        f"{card['training_data']['description']}.",
        "",
        "| split | file | rows | positives | negatives | SHA-256 |",
        "|---|---|---|---|---|---|",
        *[
            f"| {t['split']} | {t['file']} | {t['rows']} | {t['positives']} | {t['negatives']} | `{t['sha256']}` |"
            for t in card["training_data"]["tables"]
        ],
        "",
        "## Model",
        "",
        f"Architecture `{model['arch']}` with parameters `{json.dumps(model['params'], sort_keys=True)}`; "
        f"k-mer tokenizer k={model['vocab'].get('k')}, stride={model['vocab'].get('stride')} "
        f"(vocabulary of {model['vocab_size']}). Training seed {card['training']['seed']}, best epoch "
        f"{card['training']['best_epoch']}.",
        "",
        "## Files",
        "",
        *[f"- `{name}` SHA-256 `{digest}`" for name, digest in card.get("files", {}).items()],
        f"- `{CARD_FILE}`: this card as JSON (architecture, tokenizer, task, threshold, metrics, config, versions)",
        "",
        "Versions at export: "
        + ", ".join(f"{k} {v}" for k, v in card["versions"]["exported_with"].items() if v != "absent")
        + ".",
        "",
    ]
    return "\n".join(lines)


def export_model(
    checkpoint: str | Path,
    metrics: str | Path,
    outdir: str | Path,
    task_name: str,
    task: Mapping[str, Any],
    model_name: str,
    model_settings: Mapping[str, Any] | None = None,
    tables: Mapping[str, str | Path] | None = None,
    seed: int | None = None,
    threshold_metric: str = "mcc",
    name: str | None = None,
) -> dict[str, Any]:
    """Write an export folder for a classifier checkpoint; returns the card. The card goes last, so a folder
    without one was never finished (and will not load)."""
    from genolm.checkpoint import read_checkpoint_meta, sidecar_path

    checkpoint = Path(checkpoint)
    meta = read_checkpoint_meta(checkpoint)
    if sha256_file(checkpoint) != meta["weights_sha256"]:
        raise CheckpointError(f"{checkpoint}: weights do not match the SHA-256 recorded in its sidecar")
    if "window_bp" not in meta:
        raise CheckpointError(f"{checkpoint}: not a classifier checkpoint (its sidecar has no window_bp)")
    out = Path(outdir)
    name = name or out.name
    card = build_card(meta, metrics, name, task_name, task, model_name, model_settings, tables, seed, threshold_metric)
    out.mkdir(parents=True, exist_ok=True)
    for source, target in ((checkpoint, out / WEIGHTS_FILE), (sidecar_path(checkpoint), out / SIDECAR_FILE)):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    card["files"] = {WEIGHTS_FILE: meta["weights_sha256"], SIDECAR_FILE: sha256_file(out / SIDECAR_FILE)}
    write_text_atomic(out / README_FILE, card_markdown(card))
    card["files"][README_FILE] = sha256_file(out / README_FILE)
    write_text_atomic(out / CARD_FILE, json.dumps(card, indent=2, sort_keys=True) + "\n")
    log.info("exported %s to %s (threshold %.4g)", checkpoint, out, card["threshold"]["value"])
    return card


def read_card(folder: str | Path) -> dict[str, Any]:
    """The card of an export folder after checking that every file it lists is there, unedited."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such model folder")
    path = folder / CARD_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a genolm model export ({CARD_FILE} is missing)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise CheckpointError(f"{path}: not a genolm model card (format {CARD_FORMAT!r} expected)")
    if card.get("format_version") != CARD_VERSION:
        raise CheckpointError(f"{path}: card format_version {card.get('format_version')!r}, this genolm reads 1")
    files = card.get("files") or {}
    for required in (WEIGHTS_FILE, SIDECAR_FILE):
        if required not in files:
            raise CheckpointError(f"{path}: the card does not list {required}")
    for name, digest in files.items():
        member = folder / name
        if Path(name).name != name:
            raise CheckpointError(f"{path}: file name {name!r} leaves the folder")
        if not member.is_file():
            raise CheckpointError(f"{member}: missing from the model folder (listed in {CARD_FILE})")
        if sha256_file(member) != digest:
            raise CheckpointError(f"{member}: edited or corrupted (SHA-256 differs from the one in {CARD_FILE})")
    return card


@dataclass
class ExportedModel:
    """A loaded export: the classifier, its tokenizer and card, with predict / embed / scan."""

    folder: Path
    card: dict[str, Any]
    model: Any = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    device: Any = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.card["name"])

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"]["value"])

    @property
    def kind(self) -> str:
        return str(self.card["task"]["kind"])

    @property
    def window_bp(self) -> int:
        return int(self.card["model"]["window_bp"])

    @property
    def checkpoint(self) -> Path:
        return self.folder / WEIGHTS_FILE

    @property
    def tokenizer(self):
        from genolm.kmers import KmerTokenizer

        return KmerTokenizer.from_dict(self.meta["vocab"])

    def _token_set(self, sequences: Sequence[str]):
        from genolm.datasets import tokenize_sequences

        if isinstance(sequences, str):
            raise InputFormatError(f"{self.name}: give a list of sequences, not one string")
        seqs = [str(seq).upper() for seq in sequences]
        for index, seq in enumerate(seqs):
            if not seq:
                raise InputFormatError(f"{self.name}: sequence {index} is empty")
        ids = [str(i) for i in range(len(seqs))]
        return tokenize_sequences(ids, seqs, np.zeros(len(seqs), dtype=np.int64), self.tokenizer)

    def predict(self, sequences: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """P(positive) per sequence (float64), as evaluate computes it; compare with ``self.threshold``."""
        from genolm.train import predict_proba

        if len(sequences) == 0:
            return np.empty(0, dtype=np.float64)
        return predict_proba(self.model, self._token_set(sequences), batch_size=batch_size, device=self.device)

    def classify(self, sequences: Sequence[str]) -> np.ndarray:
        """Boolean calls at the card's validation threshold."""
        return self.predict(sequences) >= self.threshold

    def embed(self, sequences: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """``[N, D]`` embeddings: what the classifier's output layer reads (genolm.embeddings)."""
        from genolm.train import embed_sequences

        return embed_sequences(self.model, self._token_set(sequences), batch_size=batch_size, device=self.device)

    def scan(
        self,
        fasta: str | Path | Sequence[str | Path],
        outdir: str | Path,
        batch_size: int = 1024,
        threshold: float | None = None,
        genome: str | None = None,
        **scan_settings: Any,
    ) -> pd.DataFrame:
        """Scan a genome with :func:`genolm.genome_scan.scan_genome` (the pipeline's scan), the card's threshold,
        kind, strandedness and scan settings (``step=...`` etc. override them); returns the summary row."""
        from genolm.genome_scan import SCAN_DEFAULTS, output_paths, scan_genome

        task = self.card["task"]
        scan = {**CALL_DEFAULTS, **task["scan"], **scan_settings}
        # the genome-wide settings (N fraction, bedGraph bin) are scan_genome arguments, not task settings
        global_keys = {key: scan.pop(key) for key in list(scan) if key in SCAN_DEFAULTS}
        prefix = Path(outdir)
        prefix.mkdir(parents=True, exist_ok=True)
        first = fasta if isinstance(fasta, str | Path) else fasta[0]
        return scan_genome(
            fasta,
            self.checkpoint,
            None,
            {"kind": task["kind"], "strand_specific": task["strand_specific"], "scan": scan},
            output_paths(prefix),
            genome=genome or Path(first).name,
            task_name=str(task["name"]),
            model_name=str(self.card["model"]["name"]),
            batch_size=batch_size,
            device=str(self.device),
            threshold=self.threshold if threshold is None else threshold,
            **global_keys,
        )


def load_model(folder: str | Path, device: str = "cpu") -> ExportedModel:
    """Load an export folder: every listed file checked against the card's SHA-256, the weights against the
    sidecar's, and the card's architecture against the sidecar's. Never unpickles."""
    from genolm.checkpoint import load_checkpoint
    from genolm.train import select_device

    folder = Path(folder)
    card = read_card(folder)
    torch_device = select_device(device)
    model, meta = load_checkpoint(folder / WEIGHTS_FILE, map_location=torch_device)
    for key in ("arch", "params", "vocab", "window_bp"):
        if card["model"].get(key) != meta.get(key):
            raise CheckpointError(f"{folder / CARD_FILE}: model.{key} disagrees with {SIDECAR_FILE}")
    return ExportedModel(folder=folder, card=card, model=model, meta=meta, device=torch_device)
