"""Parameter counts of the papers' architectures at the papers' settings, beside
the published figures.

Input widths are those of the CMU-MOSI / MOSEI aligned features used by MulT and
UCRN (text 300 GloVe, audio 74 COVAREP, vision 35 Facet; sequences of 50 steps);
one regression output. UCRN's count is also broken down by part.

    python benchmarks/param_counts.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from mmrefine.config import read_yaml
from mmrefine.models import ARCHITECTURES

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "models"
MOSEI = {"l": (50, 300), "a": (50, 74), "v": (50, 35)}


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def architecture(name: str, **over) -> torch.nn.Module:
    spec = {**read_yaml(CONFIGS / f"{name}_paper.yaml")["model"]["architecture"], **over}
    return ARCHITECTURES.build(spec, provided={"input_shapes": MOSEI, "out_dim": 1})


MOSI = {"text": (100,), "audio": (73,), "video": (100,)}
AVMNIST = {"image": (1, 28, 28), "audio": (1, 112, 112)}


def mmae(config: str, shapes: dict, out_dim: int) -> torch.nn.Module:
    spec = read_yaml(CONFIGS.parent / f"{config}.yaml")["model"]["architecture"]
    return ARCHITECTURES.build(spec, provided={"input_shapes": shapes, "out_dim": out_dim})


def mmbt() -> torch.nn.Module:
    """configs/mmbt_mosi.yaml: MOSI transcripts as 48 MiniLM tokens, audio and video one token each."""
    spec = read_yaml(CONFIGS.parent / "mmbt_mosi.yaml")["model"]["architecture"]
    return ARCHITECTURES.build(spec, provided={"input_shapes": {"text": (48,), "audio": (73,), "video": (100,)}, "out_dim": 2})


def progressive_mult() -> torch.nn.Module:
    from mmrefine.refine import InputProgressiveFusion

    return InputProgressiveFusion(architecture("mult"), MOSEI, steps=2)


def sweep_variant(sweep: str, variant: str, shapes: dict, out_dim: int) -> torch.nn.Module:
    """A variant of a sweep in configs/reproduction/, as the sweep builds it (distillation aside)."""
    from mmrefine.config import load_config
    from mmrefine.data.batch import BatchSchema
    from mmrefine.experiments.sweep import load_sweep
    from mmrefine.training.builders import build_model
    from mmrefine.training.tasks import TASKS

    path = CONFIGS.parent / "reproduction" / f"{sweep}.yaml"
    spec = load_sweep(path)
    cfg = load_config(path.parent / spec.experiment, data=spec.variants[variant])
    task = TASKS.build({"name": "classification"}, provided={"num_outputs": out_dim})
    return build_model(cfg, BatchSchema.from_shapes(shapes), task)


def main() -> None:
    bert = mmbt()
    rows = [
        ("MulT (configs/models/mult_paper.yaml)", count(architecture("mult")), "1,071,211 (Guo et al., Table 7)"),
        ("MulT-GMU (fusion: gmu, gmu_dim 64)", count(architecture("mult", fusion="gmu")), "-"),
        ("UCRN (configs/models/ucrn_paper.yaml, cross_mode concat)", count(architecture("ucrn")), "422,401 trimodal, 211,681 bimodal (Guo et al., Table 7)"),
        ("UCRN, cross_layers 1", count(architecture("ucrn", cross_layers=1)), "-"),
        ("UCRN, cross_mode tokens", count(architecture("ucrn", cross_mode="tokens")), "-"),
        ("MMAE (configs/mmae_mosi.yaml; MOSI text 100, audio 73, video 100; 2 classes)", count(mmae("mmae_mosi", MOSI, 2)), "-"),
        ("MMAE (configs/mmae_avmnist.yaml; image 784, audio 12,544; 10 classes)", count(mmae("mmae_avmnist", AVMNIST, 10)), "-"),
        ("MMBT on MiniLM (configs/mmbt_mosi.yaml; 48 text tokens + audio + video; 2 classes)", count(bert), "-"),
        ("  of which trainable (freeze_layers 3)", sum(p.numel() for p in bert.parameters() if p.requires_grad), "-"),
        ("Progressive Fusion around MulT (mult_paper.yaml, R = 2, linear)", count(progressive_mult()), "-"),
        ("MSD teacher on MOSI (msd_mosi.yaml: MulT, width 30, 2 layers)", count(sweep_variant("msd_mosi", "teacher", MOSI, 2)), "-"),
        ("MSD student on MOSI (msd_mosi.yaml: GMU late fusion)", count(sweep_variant("msd_mosi", "student", MOSI, 2)), "-"),
        ("MSD teacher on AV-MNIST (msd_avmnist.yaml: late fusion)", count(sweep_variant("msd_avmnist", "teacher", AVMNIST, 10)), "-"),
        ("MSD student on AV-MNIST (msd_avmnist.yaml: MLP encoders)", count(sweep_variant("msd_avmnist", "student", AVMNIST, 10)), "-"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'model':<{w}} {'parameters':>12}  published")
    for name, n, pub in rows:
        print(f"{name:<{w}} {n:>12,}  {pub}")
    ucrn = architecture("ucrn")
    print("\nUCRN (paper settings) by part:")
    for part in ("proj", "unimodal", "quality", "cross", "fc1", "fc2", "out"):
        print(f"  {part:<10} {count(getattr(ucrn, part)):>10,}")


if __name__ == "__main__":
    main()
