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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import yaml

from mmrefine.core.errors import ConfigError
from mmrefine.core.typecheck import from_dict  # noqa: F401  (re-exported: configs are built with it)


def _check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}")


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
    ``distill`` (``{teacher: RUN_DIR, weighting, temperature, lam, weights, single}``,
    :class:`~mmrefine.refine.ModalityDistiller`) trains the model as the student of the
    model a finished run directory holds.
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
    distill: Union[dict, None] = None

    def __post_init__(self) -> None:
        self.encoders = {m: spec for m, spec in self.encoders.items() if spec is not None}
        _check(0 <= self.head_dropout < 1, "model.head_dropout", "must be in [0, 1)", self.head_dropout)
        _check(all(h >= 1 for h in self.head_hidden), "model.head_hidden", "must list widths >= 1", self.head_hidden)


@dataclass
class OptimConfig:
    """AdamW with linear warmup then ``cosine``, ``linear`` or ``constant`` decay (per step).
    ``lr_multipliers`` (``{pattern: m}``) trains the parameters whose dotted name matches a
    shell-style ``pattern`` (the first that matches) at ``m * lr``, e.g. a pretrained
    transformer's blocks at a small rate: ``{"*.blocks.*": 0.05}``; a pattern that matches no
    parameter is an error. ``fused``: torch's fused AdamW kernel, several times cheaper per
    step than the default (``foreach``, bit for bit the same as torch's plain loop) but with
    other rounding in the last bits (:func:`mmrefine.training.module.adamw_implementation`)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    fused: bool = False

    def __post_init__(self) -> None:
        _check(self.lr >= 0, "optim.lr", "must be >= 0", self.lr)
        for pattern, m in self.lr_multipliers.items():
            _check(m >= 0, f"optim.lr_multipliers.{pattern}", "must be >= 0", m)
        _check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0", self.weight_decay)
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas", "must be two numbers in [0, 1)", self.betas)
        _check(self.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0", self.warmup_steps)
        _check(0 <= self.warmup_fraction < 1, "optim.warmup_fraction", "must be in [0, 1)", self.warmup_fraction)
        _check(self.schedule in ("cosine", "linear", "constant"), "optim.schedule", "must be cosine, linear or constant", self.schedule)
        _check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio", "must be in [0, 1]", self.min_lr_ratio)


@dataclass
class TrainerConfig:
    """Lightning Trainer settings plus checkpointing, early stopping and the experiment
    trackers (``loggers``; :mod:`mmrefine.training.loggers`)."""

    max_epochs: int = 30
    accelerator: str = "auto"
    devices: Union[int, str] = "auto"
    num_nodes: int = 1  # machines of a multi-node DDP run (see docs/performance.md)
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
    # last.ckpt (where --resume restarts) is rewritten at an epoch's end once this many seconds
    # have passed since its previous write, when the best checkpoint is written, and after the
    # final epoch; 0: after every epoch (mmrefine.training.rundir.LastCheckpoint)
    last_checkpoint_every_s: float = 30.0
    loggers: list[str] = field(default_factory=lambda: ["csv"])  # csv (always written), tensorboard, mlflow
    tracking_uri: Union[str, None] = None  # MLflow tracking store (None: sqlite in the run or sweep directory)
    experiment_name: Union[str, None] = None  # MLflow experiment (None: the run directory's name, or the sweep's)
    run_name: Union[str, None] = None  # MLflow run name (None: the run directory's name, or VARIANT/seedN)

    def __post_init__(self) -> None:
        _check(self.max_epochs >= 1, "trainer.max_epochs", "must be >= 1", self.max_epochs)
        known = ("csv", "tensorboard", "mlflow")
        _check(all(n in known for n in self.loggers), "trainer.loggers", f"must list loggers among {', '.join(known)}", self.loggers)
        _check(self.num_nodes >= 1, "trainer.num_nodes", "must be >= 1", self.num_nodes)
        _check(self.patience is None or self.patience >= 0, "trainer.patience", "must be >= 0", self.patience)
        _check(self.mode in (None, "min", "max"), "trainer.mode", "must be min or max", self.mode)
        _check(self.save_top_k >= -1, "trainer.save_top_k", "must be >= -1", self.save_top_k)
        _check(self.gradient_clip_val is None or self.gradient_clip_val > 0, "trainer.gradient_clip_val", "must be positive",
               self.gradient_clip_val)
        _check(self.log_every_n_steps >= 1, "trainer.log_every_n_steps", "must be >= 1", self.log_every_n_steps)
        _check(self.last_checkpoint_every_s >= 0, "trainer.last_checkpoint_every_s", "must be >= 0", self.last_checkpoint_every_s)
        _check(self.check_val_every_n_epoch >= 1, "trainer.check_val_every_n_epoch", "must be >= 1", self.check_val_every_n_epoch)


@dataclass
class PretrainConfig:
    """Self-supervised stage before fine-tuning: refiner losses only, no labels,
    on the whole training split. ``epochs: 0`` skips it. ``weights``: start from the
    same pretraining another run already computed (a run directory or its
    ``pretrain/model.safetensors``; ``{seed}`` is this run's seed; checked against that
    run's config: :mod:`mmrefine.training.pretrained`)."""

    epochs: int = 0
    lr: Union[float, None] = None
    weights: Union[str, None] = None

    def __post_init__(self) -> None:
        _check(self.epochs >= 0, "pretrain.epochs", "must be >= 0", self.epochs)
        _check(self.lr is None or self.lr > 0, "pretrain.lr", "must be positive", self.lr)
        _check(self.weights is None or self.epochs > 0, "pretrain.weights",
               "needs pretrain.epochs > 0 (the pretraining those weights come from)", self.weights)


@dataclass
class ExperimentConfig:
    """The whole experiment; every section is checked by key (see the module docstring)."""

    seed: int = 0
    run_dir: str = "runs/experiment"
    task: Union[dict, None] = None  # None: the task the dataset provides
    data: dict = field(default_factory=lambda: {"name": "mfeat"})
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        _check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)", self.seed)
        _check(bool(self.run_dir), "run_dir", "must be a folder name", self.run_dir)
        for section in ("data", "model.fusion", "model.default_encoder"):
            node: Any = self
            for part in section.split("."):
                node = getattr(node, part)
            name = node.get("name") if isinstance(node, dict) else None
            _check(name is None or isinstance(name, str), f"{section}.name", "must be a component name (a string)", name)


# --------------------------------------------------------------------------- loading


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


def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML mapping, resolving ``base:`` chains (a cycle is an error)."""
    path = Path(path)
    if path.resolve() in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ConfigError(f"base: cycle in config files: {cycle}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc}); the file is damaged") from exc
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{path}: invalid YAML ({first})") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base must be a file name, got {base!r}")
        data = deep_merge(read_yaml(path.parent / base, (*_chain, path.resolve())), data)
    return dict(data)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"override '{item}': the value is not valid YAML ({first}); quote it or fix the brackets") from exc
        if not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override '{item}': the key must look like section.key")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.get(p)
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (), data: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """The config of ``path`` (with its ``base:`` chain), ``data`` merged over it, then the
    ``key=value`` overrides; an invalid setting is a :class:`ConfigError` naming the file and the key."""
    raw = dict(data or {})
    if path is not None:
        raw = deep_merge(read_yaml(path), raw)
    try:
        return from_dict(ExperimentConfig, migrate_legacy(apply_overrides(raw, overrides)))
    except ConfigError as exc:
        if path is None or str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from exc


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
