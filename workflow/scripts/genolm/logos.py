"""Sequence logos drawn with matplotlib alone: each letter a glyph path scaled into its box.

Matrices are ``[L, 4]``: positions x bases in A, C, G, T order (the MEME layout). A probability logo stacks the
letters of a column by height ``p * IC`` (information content in bits against a uniform background, so a column
is at most 2 bits tall), smallest at the bottom. A weight logo (ISM importance of a reference sequence) takes
signed heights: positive letters stack up from 0, negative ones down.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

BASES = "ACGT"
# The usual nucleotide colours: A green, C blue, G orange, T red.
COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}
_FONT = FontProperties(family="DejaVu Sans", weight="bold")
_GLYPHS: dict[str, MplPath] = {}


def information_content(pwm: np.ndarray) -> np.ndarray:
    """Bits per column of a probability matrix ``[L, 4]``: 2 + sum p log2 p (uniform background)."""
    p = np.asarray(pwm, dtype=np.float64)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return 2.0 + (p * logs).sum(axis=1)


def logo_heights(pwm: np.ndarray) -> np.ndarray:
    """Letter heights ``[L, 4]`` of a probability logo: each probability times its column's information content."""
    pwm = np.asarray(pwm, dtype=np.float64)
    return pwm * information_content(pwm)[:, None]


def _glyph(letter: str) -> MplPath:
    """The letter's outline, moved so that its ink box starts at (0, 0): boxes then map exactly onto cells."""
    if letter not in _GLYPHS:
        path = TextPath((0, 0), letter, size=1, prop=_FONT)
        box = path.get_extents()
        _GLYPHS[letter] = (
            Affine2D().translate(-box.x0, -box.y0).scale(1 / box.width, 1 / box.height).transform_path(path)
        )
    return _GLYPHS[letter]


def draw_letter(ax: Axes, letter: str, x: float, y: float, width: float, height: float) -> PathPatch:
    """Draw ``letter`` filling the box [x, x + width] x [y, y + height] (height > 0) in data coordinates."""
    path = Affine2D().scale(width, height).translate(x, y).transform_path(_glyph(letter))
    patch = PathPatch(path, facecolor=COLOURS.get(letter, "grey"), edgecolor="none", label=letter)
    ax.add_patch(patch)
    return patch


def draw_logo(
    ax: Axes,
    heights: np.ndarray,
    x0: float = 0.0,
    letters: Sequence[str] = BASES,
    pad: float = 0.05,
) -> list[PathPatch]:
    """Draw letters of signed ``heights`` ``[L, 4]`` with column j centred on ``x0 + j``; returns the patches.

    Positive heights stack upwards from 0 (smallest first), negative ones downwards; zero heights draw nothing.
    """
    heights = np.asarray(heights, dtype=np.float64)
    patches = []
    width = 1.0 - 2 * pad
    for j, column in enumerate(heights):
        up, down = 0.0, 0.0
        for b in np.argsort(np.abs(column), kind="stable"):
            h = float(column[b])
            if h > 0:
                patches.append(draw_letter(ax, letters[b], x0 + j - 0.5 + pad, up, width, h))
                up += h
            elif h < 0:
                down += h
                patches.append(draw_letter(ax, letters[b], x0 + j - 0.5 + pad, down, width, -h))
    low = min(0.0, float(np.minimum(heights, 0).sum(axis=1).min(initial=0.0)))
    high = max(float(np.maximum(heights, 0).sum(axis=1).max(initial=0.0)), 1e-9)
    ax.set_xlim(x0 - 0.5, x0 + len(heights) - 0.5)
    ax.set_ylim(low * 1.05, high * 1.05)
    return patches


def probability_logo(ax: Axes, pwm: np.ndarray, x0: float = 0.0, title: str | None = None) -> list[PathPatch]:
    """An information-content logo of a probability matrix on ``ax``, y from 0 to 2 bits."""
    patches = draw_logo(ax, logo_heights(pwm), x0=x0)
    ax.set_ylim(0, 2)
    ax.set_ylabel("bits")
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return patches
