"""The config schema: every shipped config passes, every kind of mistake fails with a message naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
SHIPPED = sorted([REPO / "config" / "config.yaml", *REPO.glob("config/*.yaml"), *REPO.glob("tests/e2e/*.yaml")])


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def demo() -> dict:
    return load(REPO / "config" / "config.yaml")


@pytest.mark.parametrize("path", sorted(set(SHIPPED)), ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_are_valid(path):
    validate(load(path), SCHEMA)


def test_schema_is_draft_2020_12_and_fills_defaults(demo):
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    del demo["evaluate"], demo["models"]["cnn"]["train"]["patience"]
    validate(demo, SCHEMA)
    assert demo["evaluate"] == {
        "threshold_metric": "mcc",
        "bootstrap": 200,
        "seed_ensemble": True,
        "model_ensembles": {},
    }
    assert demo["models"]["cnn"]["train"]["patience"] == 3
    assert demo["tasks"]["is"]["source"] == "demo"


def _set(config: dict, dotted: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("sedd", 1, "sedd"),  # typo at the top level
        ("models.cnn.trian", {}, "trian"),  # typo inside a model
        ("models.cnn.tokenizer.k", 9, "9"),  # k beyond 8
        ("models.cnn.arch", "lstm", "lstm"),
        ("models.ulmfit.transfer", "lstm", "lstm"),  # encoder or embedding
        ("models.cnn.train.lr", -1, "-1"),
        ("tasks.promoter.kind", "enhancer", "enhancer"),
        ("tasks.promoter.scan.step", 0, "0"),
        ("device", "gpu", "gpu"),
        ("seeds", [], "seeds"),
        ("tasks.Promoter", {"kind": "promoter"}, "Promoter"),  # names become file names and wildcards
        ("genomes.mine", {"source": "file"}, "fasta"),  # a file genome needs its FASTA
    ],
)
def test_mistakes_fail_naming_the_key_or_value(demo, key, value, named):
    with pytest.raises(WorkflowError) as error:
        validate(_set(demo, key, value), SCHEMA)
    assert named in str(error.value)
