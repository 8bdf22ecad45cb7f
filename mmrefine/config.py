"""Typed experiment configuration loaded from YAML.

Every section is a dataclass; an unknown key anywhere is a :class:`ConfigError`
naming its dotted path (with a suggestion). Component sections (``data``,
``task``, ``model.encoders.*``, ``model.fusion``) hold a ``name`` plus keyword
arguments that are checked against the component's signature when built.

A YAML file may start with ``base: other.yaml`` (relative to itself): the base
is loaded first and this file's keys are merged over it, recursively.
Overrides ``key.sub=value`` (value parsed as YAML) are applied last.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import yaml

from mmrefine.core.errors import ConfigError


@dataclass
class ModelConfig:
    """Encoders per modality (``default_encoder`` for the rest), fusion and head;
    ``progressive`` (keyword arguments of
    :class:`~mmrefine.refine.ProgressiveFusion`) wraps them in Progressive Fusion.
    ``architecture`` (``{name: ucrn | mult | early_fusion_transformer, ...}``)
    replaces encoders + fusion + head by a complete architecture.
    ``refiner`` (keyword arguments of :class:`~mmrefine.refine.Refiner`:
    ``{loss: {name, margin}, gamma, decoder: {hidden}, projection: {dim, learn},
    detach_targets, ms: {weight, alpha, beta, base, epsilon}}``) wraps the
    result in a Refiner; ``null`` (the default) trains without one.
    ``encoders.<modality>: null`` removes an entry a base file set (for a run on
    fewer modalities: ``--set model.encoders.image=null``)."""

    encoders: dict[str, Union[dict, None]] = field(default_factory=dict)
    default_encoder: dict = field(default_factory=lambda: {"name": "mlp"})
    fusion: dict = field(default_factory=lambda: {"name": "concat"})
    head_hidden: list[int] = field(default_factory=list)
    head_dropout: float = 0.0
    progressive: Union[dict, None] = None
    architecture: Union[dict, None] = None
    refiner: Union[dict, None] = None

    def __post_init__(self) -> None:
        self.encoders = {m: spec for m, spec in self.encoders.items() if spec is not None}


@dataclass
class OptimConfig:
    """AdamW with linear warmup then ``cosine``, ``linear`` or ``constant`` decay (per step)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0


@dataclass
class TrainerConfig:
    """Lightning Trainer settings plus checkpointing and early stopping."""

    max_epochs: int = 30
    accelerator: str = "auto"
    devices: Union[int, str] = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    monitor: Union[str, None] = None
    mode: Union[str, None] = None
    patience: Union[int, None] = None
    save_top_k: int = 1
    gradient_clip_val: Union[float, None] = None
    deterministic: bool = True
    log_every_n_steps: int = 10
    progress_bar: bool = True
    validate_batches: bool = True
    num_sanity_val_steps: int = 2
    check_val_every_n_epoch: int = 1


@dataclass
class PretrainConfig:
    """Self-supervised stage before fine-tuning: refiner losses only, no labels,
    on the whole training split. ``epochs: 0`` skips it."""

    epochs: int = 0
    lr: Union[float, None] = None


@dataclass
class ExperimentConfig:
    seed: int = 0
    run_dir: str = "runs/experiment"
    task: Union[dict, None] = None  # None: the task the dataset provides
    data: dict = field(default_factory=lambda: {"name": "mfeat"})
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


# --------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} matches none of {' | '.join(_type_name(a) for a in args)}")
    if origin in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if args:
            return {k: _convert(v, args[1], f"{path}.{k}") for k, v in value.items()}
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Mapping[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{where}'{hint}; allowed here: {', '.join(names)}")
        kwargs[key] = _convert(value, hints[key], where)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base`` recursively. A component (a mapping with
    ``name``) whose name changes is replaced whole, not merged."""
    if "name" in over and base.get("name") != over["name"]:
        return dict(over)
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, resolving ``base:`` chains."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = data.pop("base", None)
    if base is not None:
        data = deep_merge(read_yaml(path.parent / base), data)
    return dict(data)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.get(p)
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (), data: Mapping[str, Any] | None = None) -> ExperimentConfig:
    raw = dict(data or {})
    if path is not None:
        raw = deep_merge(read_yaml(path), raw)
    return from_dict(ExperimentConfig, migrate_legacy(apply_overrides(raw, overrides)))


# --------------------------------------------------------------------------- older forms

_LEGACY_REFINER = {
    "enabled", "loss", "gamma", "decoder_hidden", "projection_dim", "learn_projection", "detach_targets", "margin",
    "ms_weight", "ms_alpha", "ms_beta", "ms_base", "ms_epsilon",
}


def legacy_refiner_spec(old: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``model.refiner`` spec equivalent to a pre-0.2 top-level ``refiner:``
    section (``enabled``, ``loss``, ``margin``, ``ms_weight``, ...); None when disabled."""
    unknown = sorted(set(old) - _LEGACY_REFINER)
    if unknown:
        raise ConfigError(f"unknown config key 'refiner.{unknown[0]}'; the Refiner is now configured under model.refiner")
    enabled = old.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"refiner.enabled: expected true/false, got {enabled!r}")
    if not enabled:
        if old.get("ms_weight", 0) > 0:
            raise ConfigError("refiner.ms_weight is set but refiner.enabled is false: it would do nothing")
        return None
    spec: dict[str, Any] = {}
    loss = old.get("loss", "cosine")
    spec["loss"] = {"name": loss, "margin": old["margin"]} if "margin" in old and loss == "contrastive" else loss
    for key in ("gamma", "detach_targets"):
        if key in old:
            spec[key] = old[key]
    if old.get("decoder_hidden") is not None:
        spec["decoder"] = {"hidden": old["decoder_hidden"]}
    if old.get("projection_dim") is not None:
        spec["projection"] = {"dim": old["projection_dim"], "learn": old.get("learn_projection", True)}
    if old.get("ms_weight", 0) > 0:
        spec["ms"] = {"weight": old["ms_weight"]} | {k[3:]: old[k] for k in ("ms_alpha", "ms_beta", "ms_base", "ms_epsilon") if k in old}
    return spec


def migrate_legacy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite older config forms into the current one, warning with the new form.

    A top-level ``refiner:`` section (``enabled: true, loss, ms_weight, ...``)
    becomes ``model.refiner``; setting both is an error."""
    out = dict(raw)
    if "refiner" not in out:
        return out
    old = out.pop("refiner")
    if old is None:
        return out
    if not isinstance(old, Mapping):
        raise ConfigError(f"refiner: expected a mapping, got {old!r}")
    spec = legacy_refiner_spec(old)
    model = dict(out.get("model") or {})
    if spec is not None and model.get("refiner") is not None:
        raise ConfigError("the Refiner is set twice: in the old top-level 'refiner:' section and in model.refiner; keep model.refiner")
    if spec is not None:
        model["refiner"] = spec
        out["model"] = model
    new_form = yaml.safe_dump({"model": {"refiner": spec}}, default_flow_style=None, sort_keys=False).strip()
    warnings.warn(
        "the top-level 'refiner:' section is deprecated and was read as:\n" + new_form
        + "\nwrite it this way in your config",
        FutureWarning,
        stacklevel=3,
    )
    return out
