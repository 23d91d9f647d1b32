"""Report parts of exported models: their cards as a table, and embeddings coloured by group (IS family).

Reads only JSON and TSV (no torch), so the report environment can build it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.colors
import pandas as pd

from genolm.report import figure_html, plt, table_html  # genolm.report selects the headless backend

NEGATIVE_COLOUR = "#bdbdbd"
OTHER_COLOUR = "#6b6b6b"
TOP_GROUPS = 8


def card_row(card: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the model-card table."""
    mcc = next((row for row in card.get("test_metrics", []) if row["metric"] == "mcc"), None)
    mcc_text = "" if mcc is None or mcc["value"] is None else f"{mcc['value']:.3f}"
    if mcc is not None and mcc.get("ci_low") is not None and mcc.get("ci_high") is not None:
        mcc_text += f" [{mcc['ci_low']:.3f}, {mcc['ci_high']:.3f}]"
    files = card.get("files", {})
    return {
        "model": card["name"],
        "task": f"{card['task']['name']} ({card['task']['kind']}, "
        f"{'strand-specific' if card['task']['strand_specific'] else 'both strands'})",
        "test MCC [95% CI]": mcc_text,
        "threshold": round(float(card["threshold"]["value"]), 4),
        "files": ", ".join(["card.json", *files]),
        "SHA-256 (weights)": str(files.get("model.safetensors", ""))[:12],
    }


def card_table(cards: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([card_row(card) for card in cards])


def group_colours(table: pd.DataFrame, top: int = TOP_GROUPS) -> dict[str, str]:
    """Colour of each positive group: the `top` most frequent get their own, the rest share 'other'."""
    positives = table[(table["label"] == 1) & (table["group"] != "")]
    counts = positives["group"].value_counts(sort=True)
    ordered = sorted(counts.index, key=lambda name: (-counts[name], name))
    palette = plt.get_cmap("tab10").colors
    return {name: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, name in enumerate(ordered[:top])}


def family_figure(title: str, table: pd.DataFrame, top: int = TOP_GROUPS) -> plt.Figure:
    """A 2-D projection with negatives grey and positives coloured by group (IS family): the `top` most frequent
    families by name, the rest as "other"; positives without a group also count as "other"."""
    table = table.assign(group=table["group"].fillna("").astype(str))
    colours = group_colours(table, top)
    figure, ax = plt.subplots(figsize=(5.2, 4.0))
    negatives = table[table["label"] == 0]
    ax.scatter(
        negatives["x"], negatives["y"], s=5, alpha=0.4, color=NEGATIVE_COLOUR, label=f"negative ({len(negatives)})"
    )
    positives = table[table["label"] == 1]
    for name, colour in colours.items():
        chosen = positives[positives["group"] == name]
        ax.scatter(chosen["x"], chosen["y"], s=7, alpha=0.8, color=colour, label=f"{name} ({len(chosen)})")
    rest = positives[~positives["group"].isin(list(colours))]
    if len(rest):
        ax.scatter(rest["x"], rest["y"], s=7, alpha=0.8, color=OTHER_COLOUR, label=f"other ({len(rest)})")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2, frameon=False)
    figure.tight_layout()
    return figure


def _has_groups(table: pd.DataFrame) -> bool:
    return "group" in table.columns and bool((table.loc[table["label"] == 1, "group"].fillna("") != "").any())


def export_parts(entries: Sequence[Mapping[str, Any]], figures: Path) -> list[str]:
    """HTML of the exported models: a card table, then each model's test embeddings coloured by group where the
    task has groups (IS family). An entry has `card` (card.json) and optionally `projection` (embedding_2d.tsv)."""
    if not entries:
        return []
    cards = [json.loads(Path(entry["card"]).read_text(encoding="utf-8")) for entry in entries]
    parts = [
        '<p class="note">Each model below is exported to results/export/{task}_{model}/ with its weights '
        "(safetensors), a JSON and Markdown model card (threshold, test metrics, training data checksums, intended "
        "use, limitations) and loads with <code>genolm.load_model(folder)</code>; every file is checked against "
        "the card's SHA-256 on load.</p>",
        table_html(card_table(cards)),
    ]
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    for entry, card in zip(entries, cards, strict=True):
        if not entry.get("projection"):
            continue
        projection = pd.read_csv(entry["projection"], sep="\t", dtype={"id": str, "group": str})
        if not _has_groups(projection):
            continue
        name = str(card["name"])
        parts.append(f"<h3>{html.escape(name)}: test embeddings by family</h3>")
        parts.append(
            figure_html(
                family_figure(f"{name}: t-SNE of test embeddings", projection),
                f"embeddings_groups_{name}",
                figures,
                f"t-SNE of {name} test embeddings coloured by group",
            )
        )
    return parts
