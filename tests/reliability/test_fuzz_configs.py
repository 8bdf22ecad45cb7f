"""Generated configs: a valid experiment config with one field mutated (hypothesis).

Mutations: a value of the wrong type, an unknown key, a number out of range, a key or
section removed. The property: the config loads and builds (data, task, model) as it
should, or the error is a ConfigError (or another mmrefine error), one line, naming the
key path; through the CLI such a config is exit code 2 and writes nothing on disk.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mmrefine.cli import main
from mmrefine.config import load_config
from mmrefine.core.errors import MMRefineError
from tests.reliability.fuzz import examples

BASE: dict[str, Any] = {
    "seed": 0,
    "run_dir": "RUN",
    "data": {"name": "mfeat", "views": ["fou", "kar"], "batch_size": 64, "labelled_fraction": 1.0},
    "model": {"default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16, "dropout": 0.1}, "fusion": {"name": "gmu", "out_dim": 16},
              "head_hidden": [16], "head_dropout": 0.1, "refiner": {"loss": "cosine", "gamma": 0.1}},
    "optim": {"lr": 0.003, "weight_decay": 0.01, "warmup_steps": 5, "schedule": "cosine"},
    "trainer": {"max_epochs": 2, "progress_bar": False, "accelerator": "cpu", "devices": 1, "patience": 2, "gradient_clip_val": 1.0},
    "pretrain": {"epochs": 0},
}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    return out


PATHS = _paths(BASE)
WRONG = {int: ["ten", [1], {"x": 1}], float: ["fast", [0.1], True], str: [123, ["a"], {"k": 1}], bool: ["yes", 3, [True]],
         list: [5, "a,b", {"a": 1}], dict: [5, "x", [1, 2]]}
OUT_OF_RANGE = [-1, -1e9, 1e12]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    """``(config, kind, path)``: BASE with one mutation at ``path`` (dotted)."""
    cfg = copy.deepcopy(BASE)
    path = draw(st.sampled_from(PATHS))
    parent = cfg
    for k in path[:-1]:
        parent = parent[k]
    leaf = path[-1]
    value = parent[leaf]
    kinds = ["type", "unknown", "missing"] + (["range"] if isinstance(value, (int, float)) and not isinstance(value, bool) else [])
    kind = draw(st.sampled_from(kinds))
    dotted = ".".join(path)
    if kind == "type":
        parent[leaf] = draw(st.sampled_from(WRONG[type(value)]))
    elif kind == "range":
        parent[leaf] = draw(st.sampled_from(OUT_OF_RANGE))
    elif kind == "missing":
        del parent[leaf]
    else:
        target = value if isinstance(value, dict) else parent
        target["zz_unknown"] = 1
        dotted = ".".join(path if isinstance(value, dict) else path[:-1]) + ".zz_unknown"
        dotted = dotted.lstrip(".")
    return cfg, kind, dotted


@settings(max_examples=examples(80))
@given(mutations())
def test_a_mutated_config_builds_or_fails_naming_its_key(tmp_path_factory: Any, mutation: tuple[dict[str, Any], str, str]) -> None:
    from mmrefine.training.engine import prepare

    cfg_dict, kind, dotted = mutation
    tmp = tmp_path_factory.mktemp("cfg")
    cfg_dict = copy.deepcopy(cfg_dict)
    if "run_dir" in cfg_dict and isinstance(cfg_dict["run_dir"], str):
        cfg_dict["run_dir"] = str(tmp / "run")
    try:
        prepare(load_config(data=cfg_dict))
        event(f"{kind}: builds")
    except MMRefineError as exc:
        event(f"{kind}: refused")
        text = str(exc)
        assert "\n" not in text, text
        parent = dotted.rsplit(".", 1)[0] if "." in dotted else dotted
        leaf = dotted.rsplit(".", 1)[-1]
        assert dotted in text or (parent in text and leaf in text), f"{kind} at {dotted}: {text!r}"
        path = tmp / "c.yaml"
        path.write_text(yaml.safe_dump(cfg_dict))
        assert main(["fit", "-c", str(path)]) == 2
        assert not (tmp / "run").exists() and not (Path("RUN")).exists()
        return
    except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
        raise AssertionError(f"{kind} at {dotted} raised {type(exc).__name__}: {exc}") from exc


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    from mmrefine.training.engine import prepare

    cfg = copy.deepcopy(BASE)
    cfg["run_dir"] = str(tmp_path / "run")
    prepare(load_config(data=cfg))
