"""Report section of issue 9: in-silico mutagenesis figures and the motifs learnt by the classifiers."""

from __future__ import annotations

import base64
import html
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from genolm.report import table_html


def _png_html(path: str | Path, name: str, figures: Path, alt: str) -> str:
    """Copy a PNG the pipeline drew into the report's figures and inline it, as genolm.report does."""
    data = Path(path).read_bytes()
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, figures / f"{name}.png")
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _top_substitutions(table: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The substitutions that lower the score most."""
    return table.nsmallest(n, "delta")[
        ["contig", "position", "ref", "alt", "strand", "score_ref", "score_alt", "delta"]
    ]


def interpret_parts(entries: Sequence[Mapping[str, Any]], figures: Path) -> list[str]:
    """HTML fragments: per ISM target its heat map and strongest substitutions; per motif run its table and logos."""
    if not entries:
        return []
    parts = [
        '<p class="note">In-silico mutagenesis: the change of the model score for every single-base substitution '
        "(red raises, blue lowers the score); the track draws each reference base scaled by its importance "
        "(reference score minus the mean score of its three substitutions). Positions are genome coordinates "
        "(1-based, forward-strand alleles); heat-map columns follow the strand the model reads. Motifs are grouped "
        "from high-importance seqlets of the best-scored positive test sequences (genolm.motifs); match_score is "
        "the mean column Pearson correlation with the known motif.</p>"
    ]
    for entry in entries:
        if entry["kind"] == "ism":
            label = f"{entry['genome']} / {entry['task']} / {entry['model']} / {entry['target']}"
            name = f"ism_{entry['genome']}_{entry['task']}_{entry['model']}_{entry['target']}"
            parts.append(f"<h3>ISM: {html.escape(label)}</h3>")
            parts.append(_png_html(entry["figure"], name, figures, f"in-silico mutagenesis {label}"))
            table = pd.read_csv(entry["table"], sep="\t")
            parts.append(table_html(_top_substitutions(table)))
        else:
            label = f"{entry['task']} / {entry['model']}"
            name = f"motifs_{entry['task']}_{entry['model']}"
            parts.append(f"<h3>Motifs: {html.escape(label)}</h3>")
            parts.append(table_html(pd.read_csv(entry["motifs"], sep="\t")))
            parts.append(_png_html(entry["logos"], name, figures, f"motif logos {label}"))
            if entry.get("meme"):
                parts.append(f'<p class="note">PWMs in MEME format (for TomTom): {html.escape(str(entry["meme"]))}</p>')
    return parts
