"""`NAME=JSON` command-line options of the benchmark scripts (recipes, variants)."""

from __future__ import annotations

import json
from typing import Any


def named_settings(specs: list[str], default: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`NAME=JSON` strings as {name: settings}, in the order given; `default` when there are none."""
    if not specs:
        return default
    out = {}
    for spec in specs:
        name, _, settings = spec.partition("=")
        out[name] = json.loads(settings)
    return out
