from pathlib import Path

import pytest
import yaml

from mmrefine.config import load_config
from mmrefine.core.errors import ConfigError
from mmrefine.training.builders import build_datamodule, build_model, build_task
from tests.conftest import tiny_config


def test_unknown_top_level_and_nested_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'trainer.max_epoch' \\(did you mean 'max_epochs'\\?\\)"):
        load_config(data={"trainer": {"max_epoch": 3}})
    with pytest.raises(ConfigError, match="unknown config key 'refinr'"):
        load_config(data={"refinr": {}})


def test_wrong_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trainer.max_epochs: expected an integer"):
        load_config(data={"trainer": {"max_epochs": "ten"}})
    with pytest.raises(ConfigError, match="refiner.enabled: expected true/false"):
        load_config(data={"refiner": {"enabled": "yes"}})  # the deprecated form is still checked


def test_component_keys_checked_against_signature(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, model={"fusion": {"name": "gmu", "out_dimm": 8}})
    dm = build_datamodule(cfg)
    task = build_task(cfg, dm)
    with pytest.raises(ConfigError, match="model.fusion.out_dimm: unknown key for fusion 'gmu' \\(did you mean 'out_dim'\\?\\)"):
        build_model(cfg, dm.schema, task)
    cfg = tiny_config(tmp_path, model={"fusion": {"name": "gmux"}})
    with pytest.raises(ConfigError, match="unknown fusion 'gmux' \\(did you mean 'gmu'\\?\\)"):
        build_model(cfg, dm.schema, task)
    cfg = tiny_config(tmp_path, model={"encoders": {"audio": {"name": "mlp"}}})
    with pytest.raises(ConfigError, match="model.encoders: unknown modality \\['audio'\\]"):
        build_model(cfg, dm.schema, task)
    with pytest.raises(ConfigError, match="data.view: unknown key for dataset 'mfeat'"):
        build_datamodule(tiny_config(tmp_path, data={"view": ["fou"]}))


def test_null_removes_an_inherited_encoder(tmp_path: Path) -> None:
    """A run on fewer modalities drops the base file's encoder for the others."""
    base = tmp_path / "base.yaml"
    base.write_text("data: {name: mfeat, views: [fou, kar]}\nmodel:\n  encoders:\n    fou: {name: mlp, out_dim: 8}\n    kar: {name: mlp, out_dim: 4}\n")
    cfg = load_config(base, ["data.views=[fou]", "model.encoders.kar=null", f"run_dir={tmp_path / 'r'}"])
    assert cfg.model.encoders == {"fou": {"name": "mlp", "out_dim": 8}}
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.schema, build_task(cfg, dm))
    assert model.encoders["fou"].out_dim == 8 and set(model.encoders) == {"fou"}


def test_ms_weight_without_refiner_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="would do nothing"):
        tiny_config(tmp_path, refiner={"ms_weight": 0.1})


def test_refiner_spec_keys_are_checked_by_name(tmp_path: Path) -> None:
    def build(spec: dict) -> object:
        cfg = tiny_config(tmp_path, model={"refiner": spec})
        dm = build_datamodule(cfg)
        return build_model(cfg, dm.schema, build_task(cfg, dm))

    for spec, message in [
        ({"gama": 0.1}, "model.refiner.gama: unknown key .*did you mean 'gamma'"),
        ({"ms": {"weight": 0.1, "alpah": 2}}, "refiner.ms.alpah: unknown key .*did you mean 'alpha'"),
        ({"loss": {"name": "contrastive", "margn": 0.2}}, "refiner.loss.margn: unknown key .*did you mean 'margin'"),
        ({"loss": "cosin"}, "unknown refiner loss 'cosin' \\(did you mean 'cosine'"),
        ({"decoder": {"width": 8}}, "refiner.decoder.width: unknown key"),
        ({"projection": {"learn": False}}, "refiner.projection: .* needs 'dim'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build(spec)
    ref = build({"loss": {"name": "contrastive", "margin": 0.2}, "decoder": {"hidden": 8}, "ms": {"weight": 0.3, "beta": 40}})
    assert ref.criterion.margin == 0.2 and ref.decoders.hidden == 8 and ref.ms_weight == 0.3
    assert ref.ms_loss.loss.beta == 40


def test_old_refiner_section_is_read_with_a_warning_showing_the_new_form(tmp_path: Path) -> None:
    old = {"enabled": True, "loss": "contrastive", "margin": 0.2, "gamma": 0.3, "decoder_hidden": 8,
           "projection_dim": 4, "learn_projection": False, "ms_weight": 0.1, "ms_beta": 40.0}
    with pytest.warns(FutureWarning, match="model:\\n  refiner:") as rec:
        cfg = tiny_config(tmp_path, refiner=old)
    assert "margin: 0.2" in str(rec[0].message)
    assert cfg.model.refiner == {
        "loss": {"name": "contrastive", "margin": 0.2}, "gamma": 0.3, "decoder": {"hidden": 8},
        "projection": {"dim": 4, "learn": False}, "ms": {"weight": 0.1, "beta": 40.0},
    }
    with pytest.warns(FutureWarning):
        assert tiny_config(tmp_path, refiner={"enabled": False}).model.refiner is None
    with pytest.raises(ConfigError, match="set twice"):
        tiny_config(tmp_path, refiner={"enabled": True}, model={"refiner": {}})


def test_base_overrides_and_component_replacement(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("seed: 1\nmodel:\n  fusion: {name: concat, hidden: [8]}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel:\n  fusion: {name: gmu, out_dim: 4}\n")
    cfg = load_config(tmp_path / "child.yaml", ["trainer.max_epochs=7", "model.refiner.gamma={a: 0.2}"])
    assert cfg.seed == 1 and cfg.model.fusion == {"name": "gmu", "out_dim": 4}
    assert cfg.trainer.max_epochs == 7 and cfg.model.refiner == {"gamma": {"a": 0.2}}


def test_every_shipped_config_loads() -> None:
    from mmrefine.experiments.sweep import load_sweep

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert len(files) >= 10
    for f in files:
        data = yaml.safe_load(f.read_text())
        if "variants" in data:
            sweep = load_sweep(f)
            for name, over in sweep.variants.items():
                load_config(f.parent / sweep.experiment, data=over)
        else:
            load_config(f)
