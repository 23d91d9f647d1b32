"""The config's canonical key order (genolm.config_order): settings blocks sorted, named collections kept."""

from __future__ import annotations

from genolm.config_order import canonical_config

CONFIG = {
    "seed": 1,
    "tasks": {
        "promoter": {"source": "cnnprom", "kind": "promoter", "scan": {"step": 1, "window": 81}},
        "is": {"kind": "is", "source": "isfinder"},
    },
    "models": {
        "ulmfit": {"train": {"lr": 0.01, "epochs": 4}, "arch": "awd_lstm", "task_params": {"is": {"b": 1, "a": 2}}},
        "cnn": {"params": {"kernel": 9, "channels": [{"z": 1, "a": 2}, 3]}, "arch": "cnn"},
    },
    "device": "auto",
}


def test_settings_blocks_are_sorted_and_collections_keep_their_order():
    canonical = canonical_config(CONFIG)
    assert list(canonical) == ["device", "models", "seed", "tasks"]
    assert list(canonical["tasks"]) == ["promoter", "is"]
    assert list(canonical["models"]) == ["ulmfit", "cnn"]
    assert list(canonical["tasks"]["promoter"]) == ["kind", "scan", "source"]
    assert list(canonical["models"]["ulmfit"]) == ["arch", "task_params", "train"]
    assert list(canonical["models"]["ulmfit"]["train"]) == ["epochs", "lr"]
    assert list(canonical["models"]["ulmfit"]["task_params"]["is"]) == ["a", "b"]
    # lists keep their order; mappings inside them are sorted too
    assert canonical["models"]["cnn"]["params"]["channels"] == [{"a": 2, "z": 1}, 3]
    assert list(canonical["models"]["cnn"]["params"]["channels"][0]) == ["a", "z"]
    assert canonical == CONFIG  # same content


def test_the_same_settings_in_another_order_give_the_same_params_repr():
    """What Snakemake's params trigger compares: the repr of each parameter."""
    reordered = {
        "device": "auto",
        "models": {
            "ulmfit": {"arch": "awd_lstm", "task_params": {"is": {"a": 2, "b": 1}}, "train": {"epochs": 4, "lr": 0.01}},
            "cnn": {"arch": "cnn", "params": {"channels": [{"a": 2, "z": 1}, 3], "kernel": 9}},
        },
        "tasks": {
            "promoter": {"scan": {"window": 81, "step": 1}, "kind": "promoter", "source": "cnnprom"},
            "is": {"source": "isfinder", "kind": "is"},
        },
        "seed": 1,
    }
    assert repr(canonical_config(reordered)) == repr(canonical_config(CONFIG))
    assert repr(reordered["tasks"]["promoter"]) != repr(CONFIG["tasks"]["promoter"])


def test_the_input_is_not_changed_and_other_collection_paths_can_be_named():
    before = repr(CONFIG)
    canonical = canonical_config(CONFIG, ordered=frozenset())
    assert repr(CONFIG) == before
    assert list(canonical["tasks"]) == ["is", "promoter"]
