import itertools
import math

import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.models import POOLINGS, UCRN, EarlyFusionTransformer, MulT, js_divergence
from mmrefine.refine import Refiner

SEQ = {"l": (6, 10), "a": (5, 4), "v": (4, 3)}


def seq_inputs(shapes=SEQ, b: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, *s, generator=g) for m, s in shapes.items()}


def train_steps(model: torch.nn.Module, x, y, steps: int = 3) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.logits, y)
        aux = getattr(model, "auxiliary_losses", None)
        if aux is not None:
            loss = loss + sum(aux(out).values())
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not missing, missing
        opt.step()
    return losses


def small_ucrn(**kw) -> UCRN:
    torch.manual_seed(0)
    return UCRN(SEQ, 3, d=6, heads=2, layers=1, cross_layers=1, sq_reduction=2, **kw)


# ---------------------------------------------------------------- UCRN
def test_js_divergence_formula() -> None:
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    js = js_divergence(p, q)
    assert js[0].item() == pytest.approx(0.0, abs=1e-7)
    assert js[1].item() == pytest.approx(math.log(2), rel=1e-5)  # disjoint supports: ln 2
    p2, q2 = torch.tensor([[0.2, 0.8]]), torch.tensor([[0.6, 0.4]])
    m = (p2 + q2) / 2
    by_hand = 0.5 * (p2 * (p2 / m).log()).sum() + 0.5 * (q2 * (q2 / m).log()).sum()
    assert js_divergence(p2, q2).item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert js_divergence(q2, p2).item() == pytest.approx(js_divergence(p2, q2).item(), rel=1e-6)  # symmetric


def test_ucrn_mjs_term_is_sum_over_pairs_of_softmax_js() -> None:
    model = small_ucrn().eval()
    out = model(seq_inputs())
    r = out.fusion.refined
    expected = sum(js_divergence(r[a].softmax(-1), r[b].softmax(-1)).mean() for a, b in itertools.combinations(SEQ, 2))
    assert model.auxiliary_losses(out)["mjs"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("cross_mode", ["concat", "tokens"])
def test_ucrn_runs_with_every_non_empty_subset(cross_mode) -> None:
    model = small_ucrn(cross_mode=cross_mode).eval()
    x = seq_inputs()
    for k in range(1, 4):
        for subset in itertools.combinations(SEQ, k):
            mask = {m: torch.full((4,), m in subset) for m in SEQ}
            out = model(x, mask)
            assert out.logits.shape == (4, 3) and torch.isfinite(out.logits).all()
            y = {m: (v + 50 if m not in subset else v) for m, v in x.items()}
            assert torch.allclose(model(y, mask).logits, out.logits, atol=1e-5)  # absent values ignored
            assert torch.isfinite(model.auxiliary_losses(out, mask)["mjs"])


@pytest.mark.parametrize("kw", [{}, {"cross_mode": "tokens", "pooling": "temporal"}])
def test_ucrn_trains_with_gradients_everywhere(kw) -> None:
    model = small_ucrn(**kw)
    train_steps(model, seq_inputs(), torch.tensor([0, 1, 2, 0]))


def test_ucrn_vector_inputs_are_length_one_sequences() -> None:
    model = UCRN({"t": (8,), "a": (5,)}, 2, d=6, heads=2, layers=1, cross_layers=1)
    assert model({"t": torch.randn(3, 8), "a": torch.randn(3, 5)}).logits.shape == (3, 2)


# ---------------------------------------------------------------- MulT
@pytest.mark.parametrize("fusion", ["concat", "gmu"])
def test_mult_trains_with_gradients_everywhere(fusion) -> None:
    torch.manual_seed(0)
    model = MulT(SEQ, 3, d=6, heads=2, layers=1, fusion=fusion, gmu_dim=5)
    train_steps(model, seq_inputs(), torch.tensor([0, 1, 2, 0]))
    assert len(model.cross) == 6  # every ordered pair


def test_mult_gmu_takes_extra_vector_modalities_and_reports_gates() -> None:
    torch.manual_seed(0)
    shapes = {"l": (6, 10), "a": (5, 4), "img": (7,)}
    model = MulT(shapes, 2, d=6, heads=2, layers=1, fusion="gmu", gmu_dim=5)
    x = seq_inputs(shapes)
    mask = {m: torch.ones(4, dtype=torch.bool) for m in shapes}
    mask["img"][0] = False
    out = model(x, mask)
    assert out.fusion.gates.shape == (4, 3, 5) and (out.fusion.gates[0, 2] == 0).all()
    train_steps(model, x, torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ConfigError, match="need mult.fusion: gmu"):
        MulT(shapes, 2, d=6, heads=2, layers=1, fusion="concat")


def test_mult_causal_mask_restricts_attention_to_the_past() -> None:
    torch.manual_seed(0)
    model = MulT({"l": (5, 3), "a": (5, 3)}, 2, d=4, heads=2, layers=1, causal=True, embed_dropout=0, attn_dropout=0, relu_dropout=0, res_dropout=0).eval()
    x = seq_inputs({"l": (5, 3), "a": (5, 3)})
    y = {m: v.clone() for m, v in x.items()}
    y["a"][:, -1] += 10  # the last step of the source: visible to the last target step only
    cross = model.cross["l<-a"]
    px = {m: model.proj[m](v.transpose(1, 2)).transpose(1, 2) for m, v in x.items()}
    py = {m: model.proj[m](v.transpose(1, 2)).transpose(1, 2) for m, v in y.items()}
    hx, hy = cross(px["l"], px["a"]), cross(py["l"], py["a"])
    assert torch.allclose(hx[:, :-1], hy[:, :-1], atol=1e-5) and not torch.allclose(hx[:, -1], hy[:, -1])


# ------------------------------------------------- early-fusion transformer
EF = {"t": (5, 8), "i": (3, 6), "tab": (4,)}


@pytest.mark.parametrize("pooling", POOLINGS)
def test_early_fusion_poolings_have_documented_shapes(pooling) -> None:
    torch.manual_seed(0)
    model = EarlyFusionTransformer(EF, 2, d=8, heads=2, layers=3, target_pooling=pooling).eval()
    out = model(seq_inputs(EF))
    width = 16 if pooling == "concat_last2" else 8
    assert all(out.features[m].shape == (4, width) for m in EF) and model.feature_dims["t"] == width
    hs, spans = out.fusion.hidden_states, out.fusion.spans
    assert len(hs) == 4 and spans == {"t": (1, 6), "i": (6, 9), "tab": (9, 10)}
    s_last = hs[-1][:, 1:6].mean(1)
    s_prev = hs[-2][:, 1:6].mean(1)
    expected = {
        "avg_last": s_last, "avg_last2": (s_last + s_prev) / 2, "sum_last": 5 * s_last,
        "sum_last2": 5 * (s_last + s_prev), "concat_last2": torch.cat([s_last, s_prev], -1),
    }[pooling]
    assert torch.allclose(out.features["t"], expected, atol=1e-5)


def test_early_fusion_pools_every_layer_after_the_same_norm() -> None:
    """*_last2 poolings must not mix the final LayerNorm-ed layer with a raw one:
    every exposed layer has gone through the final LayerNorm (at init: per-token
    mean 0, std 1)."""
    torch.manual_seed(0)
    model = EarlyFusionTransformer(EF, 2, d=8, heads=2, layers=3, target_pooling="avg_last2").eval()
    for h in model(seq_inputs(EF)).fusion.hidden_states:
        assert torch.allclose(h.mean(-1), torch.zeros(h.shape[:2]), atol=1e-5)
        assert torch.allclose(h.std(-1, unbiased=False), torch.ones(h.shape[:2]), atol=1e-3)


def test_early_fusion_masks_absent_tokens_and_trains_inside_a_refiner() -> None:
    torch.manual_seed(0)
    model = EarlyFusionTransformer(EF, 3, d=8, heads=2, layers=2, target_pooling="avg_last2", fused_depth=2)
    x = seq_inputs(EF)
    mask = {m: torch.ones(4, dtype=torch.bool) for m in EF}
    mask["i"][:2] = False
    model.eval()
    out = model(x, mask)
    y = {**x, "i": x["i"] + 100}
    assert torch.allclose(model(y, mask).logits[:2], out.logits[:2], atol=1e-5)
    model.train()
    ref = Refiner(model, ms={"weight": 0.1})
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    labels = torch.tensor([0, 1, 2, 0])
    for _ in range(2):
        out = ref(x, mask)
        loss = torch.nn.functional.cross_entropy(out.logits, labels) + sum(ref.auxiliary_losses(out, mask, labels).values())
        opt.zero_grad()
        loss.backward()
        missing = [n for n, p in ref.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not missing, missing
        opt.step()


@pytest.mark.parametrize(
    "arch",
    [
        {"name": "ucrn", "d": 12, "heads": 2, "layers": 1, "cross_layers": 1, "sq_reduction": 4},
        {"name": "early_fusion_transformer", "d": 16, "heads": 2, "layers": 2, "target_pooling": "concat_last2"},
    ],
    ids=["ucrn", "early_fusion_transformer"],
)
def test_architecture_inside_refiner_fits_from_config(tmp_path, arch) -> None:
    from mmrefine.training.engine import fit
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, model={"architecture": arch, "refiner": {}}, trainer={"max_epochs": 3})
    res = fit(cfg)
    assert type(res.module.model.model).__name__ == {"ucrn": "UCRN", "early_fusion_transformer": "EarlyFusionTransformer"}[arch["name"]]
    assert "val/refiner_fou" in res.val and res.test["test/acc"] > 0.5
    if arch["name"] == "ucrn":
        assert "val/mjs" in res.val  # the inner model's regulariser survives the Refiner


ARCHS = {
    "ucrn": lambda: UCRN(SEQ, 3, d=6, heads=2, layers=1, cross_layers=1, sq_reduction=2),
    "mult": lambda: MulT(SEQ, 3, d=6, heads=2, layers=1),
    "early_fusion": lambda: EarlyFusionTransformer(SEQ, 3, d=8, heads=2, layers=2),
}


@pytest.mark.parametrize("name", list(ARCHS))
def test_progressive_fusion_around_an_architecture_keeps_step_one_the_architecture_after_training(name) -> None:
    from mmrefine.refine import InputProgressiveFusion

    torch.manual_seed(0)
    pf = InputProgressiveFusion(ARCHS[name](), SEQ, steps=3)
    x, y = seq_inputs(), torch.tensor([0, 1, 2, 0])
    train_steps(pf, x, y)  # every parameter (the back-projections too) gets a gradient
    pf.eval()
    out = pf(x)
    assert len(out.steps) == 3 and len(out.fusion.step_features) == 3
    assert torch.equal(out.steps[0], pf.model(x).fused)  # c_0 = 0 and W(0) = 0: step 1 is the trained architecture
    assert not torch.equal(out.steps[2], out.steps[0])  # later steps see the back-projected context
    for w in pf.backprojections.values():
        torch.nn.init.zeros_(w[-1].weight)
    assert torch.equal(pf(x).logits, pf.model(x).logits)  # zero back-projection: exactly the wrapped architecture


def test_progressive_fusion_wraps_an_architecture_inside_a_refiner_from_config(tmp_path) -> None:
    from mmrefine.training.engine import fit
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, model={"architecture": {"name": "ucrn", "d": 8, "heads": 2, "layers": 1, "cross_layers": 1},
                                       "progressive": {"steps": 2}, "refiner": {"gamma": 0.1}})
    res = fit(cfg)
    wrapped = res.module.model
    assert type(wrapped).__name__ == "Refiner" and type(wrapped.model).__name__ == "InputProgressiveFusion"
    assert "val/mjs" in res.val and "val/refiner_fou" in res.val and res.test["test/acc"] > 0.5


def test_paper_configs_load_and_build() -> None:
    from pathlib import Path

    from mmrefine.config import load_config
    from mmrefine.models import ARCHITECTURES

    root = Path(__file__).resolve().parents[2] / "configs" / "models"
    shapes = {"l": (50, 300), "a": (50, 74), "v": (50, 35)}
    counts = {}
    for name in ("mult", "ucrn"):
        cfg = load_config(root / f"{name}_paper.yaml")
        model = ARCHITECTURES.build(cfg.model.architecture, provided={"input_shapes": shapes, "out_dim": 1})
        counts[name] = sum(p.numel() for p in model.parameters())
    assert abs(counts["mult"] - 1_071_211) / 1_071_211 < 0.01  # UCRN paper, Guo et al., Table 7


@pytest.mark.parametrize("build", [
    lambda: UCRN(SEQ, 2, d=6, heads=2, layers=1, cross_layers=1),
    lambda: MulT(SEQ, 2, d=6, heads=2, layers=1),
    lambda: EarlyFusionTransformer(SEQ, 2, d=8, heads=2, layers=2),
], ids=["ucrn", "mult", "early_fusion"])
def test_architectures_name_a_missing_modality(build) -> None:
    from mmrefine.core.errors import BatchError

    x = seq_inputs()
    x.pop("v")
    with pytest.raises(BatchError, match="missing \\['v'\\]"):
        build()(x)


def test_mult_reads_vectors_as_length_one_sequences_when_asked() -> None:
    import torch

    from mmrefine.core.errors import ConfigError
    from mmrefine.models.mult import MulT

    shapes = {"text": (6,), "audio": (5,)}
    with pytest.raises(ConfigError, match="at least two sequence modalities"):
        MulT(shapes, 2, d=8, heads=2, layers=1)
    torch.manual_seed(0)
    lifted = MulT(shapes, 2, d=8, heads=2, layers=1, vectors_as_sequences=True).eval()
    seq = MulT({"text": (1, 6), "audio": (1, 5)}, 2, d=8, heads=2, layers=1).eval()
    seq.load_state_dict(lifted.state_dict())
    x = {"text": torch.randn(3, 6), "audio": torch.randn(3, 5)}
    assert torch.equal(lifted(x).logits, seq({m: v[:, None] for m, v in x.items()}).logits)


def test_progressive_fusion_iterative_ablation_around_an_architecture() -> None:
    from mmrefine.refine import InputProgressiveFusion

    pf = InputProgressiveFusion(ARCHS["mult"](), SEQ, steps=2, iterative=True, backprojection="mlp", hidden=8)
    assert pf.backprojections["l"][0].in_features == pf.model.feature_dims["l"]  # each modality's own previous feature
    train_steps(pf, seq_inputs(), torch.tensor([0, 1, 2, 0]), steps=2)


def test_early_fusion_attention_dropout_is_set_apart_from_the_other_dropout() -> None:
    torch.manual_seed(0)
    x = seq_inputs()
    quiet = EarlyFusionTransformer(SEQ, 3, d=8, heads=2, layers=2, dropout=0.0, attn_dropout=0.0).train()
    assert torch.equal(quiet(x).logits, quiet(x).logits)  # no dropout anywhere, even in training mode
    noisy = EarlyFusionTransformer(SEQ, 3, d=8, heads=2, layers=2, dropout=0.0, attn_dropout=0.5).train()
    assert not torch.equal(noisy(x).logits, noisy(x).logits)  # dropout on the attention weights only
    assert all(layer.self_attn.dropout == 0.1 for layer in EarlyFusionTransformer(SEQ, 3, d=8, heads=2).layers)  # default: `dropout`
    with pytest.raises(ConfigError, match="attn_dropout"):
        EarlyFusionTransformer(SEQ, 3, d=8, heads=2, attn_dropout=1.0)


FAST = {
    "mult": lambda **kw: MulT(SEQ, 3, d=6, heads=2, layers=1, **kw),
    "ucrn": lambda **kw: UCRN(SEQ, 3, d=6, heads=2, layers=1, cross_layers=1, sq_reduction=2, **kw),
    "early_fusion": lambda **kw: EarlyFusionTransformer(SEQ, 3, d=8, heads=2, layers=2, **kw),
}
@pytest.mark.parametrize("name", list(FAST))
def test_fast_dropout_is_the_same_model_with_other_masks(name) -> None:
    x, y = seq_inputs(), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(0)
    plain = FAST[name]()
    torch.manual_seed(0)
    fast = FAST[name](fast_dropout=True)
    state = plain.state_dict()
    assert state.keys() == fast.state_dict().keys()
    assert all(torch.equal(v, fast.state_dict()[k]) for k, v in state.items())  # same parameters, same checkpoints
    assert torch.allclose(fast.eval()(x).logits, plain.eval()(x).logits, atol=1e-5)
    for model in (plain, fast):  # training mode with every dropout at 0: the same computation, to 1e-5
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if isinstance(module, torch.nn.MultiheadAttention):
                module.dropout = 0.0
    assert torch.allclose(fast(x).logits, plain(x).logits, atol=1e-5)
    torch.manual_seed(1)
    noisy = FAST[name](fast_dropout=True).train()
    assert not torch.equal(noisy(x).logits, noisy(x).logits)  # the masks are drawn in training
    train_steps(noisy, x, y, steps=2)  # gradients reach every parameter through the fast path
