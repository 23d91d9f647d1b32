"""genolm: genomic language models and classifiers for promoters and insertion sequences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genolm.model_export import ExportedModel

__version__ = "0.1.0"


def load_model(folder: Any, device: str = "cpu") -> ExportedModel:
    """Load an exported model folder (`genolm export`, results/export/...): ``model.predict(seqs)``,
    ``model.embed(seqs)``, ``model.scan(fasta, outdir)``. torch is imported here, not by ``import genolm``."""
    from genolm.model_export import load_model as load

    return load(folder, device=device)
