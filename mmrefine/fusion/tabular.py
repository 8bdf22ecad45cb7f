"""Text + tabular combiners of the Multimodal-Toolkit (Gu and Budhkar, MAI 2021, Table 1).

The modalities play three roles: *text* ``x`` (the concatenation of every
text modality's feature), *categorical* ``c`` and *numerical* ``n`` (each the
concatenation of the modalities given that role; by default the modalities
named ``categorical`` and ``numerical``). A role with no modality is left out
of every formula. Any model may use them: the roles are modality names, not
table columns.

==========================  ===========================================================
``text_only``               ``m = x``
``concat``                  ``m = x ‖ c ‖ n`` (the plain :class:`ConcatFusion`)
``mlp_cat_concat``          ``m = x ‖ MLP(c) ‖ n``
``mlps_concat``             ``m = x ‖ MLP_c(c) ‖ MLP_n(n)``
``concat_mlp``              ``m = x ‖ MLP(c ‖ n)``
``tabular_attention``       ``m = sum_j alpha_{x,j} W_j j``, ``j in {x, c, n}``,
                            ``alpha_{x,j} = softmax_j LeakyReLU(a^T [W_x x ‖ W_j j])``
``gating``                  ``m = x + alpha h``, ``h = g_c ⊙ (W_c c) + g_n ⊙ (W_n n) + b_h``,
                            ``g_i = ReLU(W_gi [i ‖ x] + b_i)``,
                            ``alpha = min(||x|| / ||h|| * beta, 1)`` (MAG, Rahman et al. 2020)
``weighted_feature_sum``    ``m = x + w_c ⊙ W_c c + w_n ⊙ W_n n``
==========================  ===========================================================

Each is also registered under the Multimodal-Toolkit's long name
(``gating_on_cat_and_num_feats_then_sum`` and so on). ``MLP`` is one hidden
layer of width ``mlp_dim`` with ReLU. Absent modalities contribute zeros
(the attention leaves an absent role out of its softmax).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.fusion.base import FUSIONS, FusionModule, masked_softmax

ROLES = ("text", "categorical", "numerical")


class TabularOutput(NamedTuple):
    fused: Tensor
    weights: Tensor | None = None  # tabular_attention: (B, roles) attention of the text on each role
    gates: Tensor | None = None  # gating: (B, 2, d_x) gates g_c, g_n
    scale: Tensor | None = None  # gating: (B,) alpha


class TabularCombiner(FusionModule):
    """Role bookkeeping shared by the combiners (see module docstring).

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims)
        roles: dict[str, list[str]] = {}
        for role, given in (("categorical", categorical), ("numerical", numerical)):
            if given is None:
                roles[role] = [role] if role in self.in_dims else []
                continue
            unknown = sorted(set(given) - set(self.in_dims))
            if unknown:
                raise ConfigError(f"fusion {role}: unknown modality {unknown}; the modalities are {self.modalities}")
            roles[role] = list(given)
        both = set(roles["categorical"]) & set(roles["numerical"])
        if both:
            raise ConfigError(f"fusion: modalities {sorted(both)} are both categorical and numerical")
        tabular = set(roles["categorical"]) | set(roles["numerical"])
        roles["text"] = [m for m in self.modalities if m not in tabular]
        self.roles = roles
        self.role_dims = {r: sum(self.in_dims[m] for m in ms) for r, ms in roles.items()}

    def split(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> tuple[dict[str, Tensor | None], dict[str, Tensor]]:
        """``({role: concatenated features or None}, {role: (B,) any-present})``."""
        feats, pres = self.prepare(features, mask)
        by = dict(zip(self.modalities, feats))
        col = {m: i for i, m in enumerate(self.modalities)}
        out: dict[str, Tensor | None] = {}
        present: dict[str, Tensor] = {}
        for r, ms in self.roles.items():
            out[r] = torch.cat([by[m] for m in ms], 1) if ms else None
            present[r] = pres[:, [col[m] for m in ms]].amax(1) if ms else pres.new_zeros(len(pres))
        return out, present

    def need(self, *roles: str) -> None:
        missing = [r for r in roles if not self.roles[r]]
        if missing:
            raise ConfigError(f"{type(self).__name__} needs a {' and a '.join(missing)} modality; the modalities are {self.modalities}")


def _mlp(d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU())


def _cat(parts: Sequence[Tensor | None]) -> Tensor:
    return torch.cat([p for p in parts if p is not None], 1)


@FUSIONS.register("text_only")
@FUSIONS.register("text_only_combiner")
class TextOnlyCombiner(TabularCombiner):
    """``m = x``: the text features alone (the tabular modalities are ignored).

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.need("text")
        self.out_dim = self.role_dims["text"]

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        parts, _ = self.split(features, mask)
        return TabularOutput(parts["text"])  # type: ignore[arg-type]


@FUSIONS.register("mlp_cat_concat")
@FUSIONS.register("mlp_on_categorical_then_concat")
class MLPCategoricalConcat(TabularCombiner):
    """``m = x ‖ MLP(c) ‖ n``.

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        mlp_dim: width of the MLP's output.
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], mlp_dim: int = 64, categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.need("categorical")
        self.mlp = _mlp(self.role_dims["categorical"], mlp_dim)
        self.out_dim = self.role_dims["text"] + mlp_dim + self.role_dims["numerical"]

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, _ = self.split(features, mask)
        return TabularOutput(_cat([p["text"], self.mlp(p["categorical"]), p["numerical"]]))


@FUSIONS.register("mlps_concat")
@FUSIONS.register("individual_mlps_on_cat_and_numerical_feats_then_concat")
class MLPsConcat(TabularCombiner):
    """``m = x ‖ MLP_c(c) ‖ MLP_n(n)`` (a role without modalities is left out).

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        mlp_dim: width of each MLP's output.
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], mlp_dim: int = 64, categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.mlps = nn.ModuleDict({r: _mlp(self.role_dims[r], mlp_dim) for r in ("categorical", "numerical") if self.roles[r]})
        if not self.mlps:
            self.need("categorical", "numerical")
        self.out_dim = self.role_dims["text"] + mlp_dim * len(self.mlps)

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, _ = self.split(features, mask)
        return TabularOutput(_cat([p["text"], *[mlp(p[r]) for r, mlp in self.mlps.items()]]))


@FUSIONS.register("concat_mlp")
@FUSIONS.register("mlp_on_concatenated_cat_and_numerical_feats_then_concat")
class ConcatMLP(TabularCombiner):
    """``m = x ‖ MLP(c ‖ n)``.

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        mlp_dim: width of the MLP's output.
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], mlp_dim: int = 64, categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        tab = self.role_dims["categorical"] + self.role_dims["numerical"]
        if tab == 0:
            self.need("categorical", "numerical")
        self.mlp = _mlp(tab, mlp_dim)
        self.out_dim = self.role_dims["text"] + mlp_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, _ = self.split(features, mask)
        return TabularOutput(_cat([p["text"], self.mlp(_cat([p["categorical"], p["numerical"]]))]))


@FUSIONS.register("tabular_attention")
@FUSIONS.register("attention_on_cat_and_numerical_feats")
class TabularAttention(TabularCombiner):
    """``m = sum_j alpha_{x,j} W_j j`` over the roles ``j in {x, c, n}`` with
    ``alpha_{x,j} = softmax_j LeakyReLU(a^T [W_x x ‖ W_j j])`` (GAT-style scores
    of each role against the text); an absent role is left out of the softmax.

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        out_dim: width of ``W_j j`` and of ``m``.
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int = 64, categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.need("text")
        self.used = [r for r in ROLES if self.roles[r]]
        self.proj = nn.ModuleDict({r: nn.Linear(self.role_dims[r], out_dim, bias=False) for r in self.used})
        self.score = nn.Linear(2 * out_dim, 1, bias=False)
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, present = self.split(features, mask)
        h = torch.stack([self.proj[r](p[r]) for r in self.used], 1)  # (B, J, out)
        hx = h[:, :1].expand_as(h)
        scores = F.leaky_relu(self.score(torch.cat([hx, h], -1)).squeeze(-1), 0.2)
        alpha = masked_softmax(scores, torch.stack([present[r] for r in self.used], 1))
        return TabularOutput((alpha[..., None] * h).sum(1), weights=alpha)


@FUSIONS.register("gating")
@FUSIONS.register("gating_on_cat_and_num_feats_then_sum")
class GatingCombiner(TabularCombiner):
    """MAG-style gating: ``m = x + alpha h``,
    ``h = g_c ⊙ (W_c c) + g_n ⊙ (W_n n) + b_h``, ``g_i = ReLU(W_gi [i ‖ x] + b_i)``,
    ``alpha = min(||x|| / ||h|| * beta, 1)`` per sample (the norm-clipped scale
    keeps the tabular shift at most ``beta`` of the text vector's norm).

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        beta: the scale's cap relative to ``||x||`` (the Multimodal-Toolkit uses 0.2).
        dropout: dropout on ``m``.
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], beta: float = 0.2, dropout: float = 0.1,
                 categorical: Sequence[str] | None = None, numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.need("text")
        if beta <= 0:
            raise ConfigError(f"gating: beta must be positive, got {beta}")
        d = self.role_dims["text"]
        self.tab = [r for r in ("categorical", "numerical") if self.roles[r]]
        if not self.tab:
            self.need("categorical", "numerical")
        self.proj = nn.ModuleDict({r: nn.Linear(self.role_dims[r], d, bias=False) for r in self.tab})
        self.gate = nn.ModuleDict({r: nn.Linear(self.role_dims[r] + d, d) for r in self.tab})
        self.bias = nn.Parameter(torch.zeros(d))
        self.beta = beta
        self.dropout = nn.Dropout(dropout)
        self.out_dim = d

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, _ = self.split(features, mask)
        x = cast(Tensor, p["text"])  # the constructor requires a text modality
        gates = [F.relu(self.gate[r](torch.cat([p[r], x], 1))) for r in self.tab]  # type: ignore[list-item]
        h = sum(g * self.proj[r](p[r]) for g, r in zip(gates, self.tab)) + self.bias  # type: ignore[arg-type]
        eps = torch.finfo(x.dtype).eps
        alpha = torch.clamp(x.norm(dim=1) / (h.norm(dim=1) + eps) * self.beta, max=1.0)
        return TabularOutput(self.dropout(x + alpha[:, None] * h), gates=torch.stack(gates, 1), scale=alpha)


@FUSIONS.register("weighted_feature_sum")
@FUSIONS.register("weighted_feature_sum_on_transformer_cat_and_numerical_feats")
class WeightedFeatureSum(TabularCombiner):
    """``m = x + w_c ⊙ W_c c + w_n ⊙ W_n n`` with learned vectors ``w_c, w_n``
    (initialised to 1) and projections ``W_c, W_n`` into the text's width.

    Args:
        in_dims: ``{modality: feature width}`` (set by the builder from the encoders).
        categorical: modalities in the categorical role (default: ``categorical`` when present).
        numerical: modalities in the numerical role (default: ``numerical`` when present).
    """

    def __init__(self, in_dims: Mapping[str, int], categorical: Sequence[str] | None = None,
                 numerical: Sequence[str] | None = None) -> None:
        super().__init__(in_dims, categorical, numerical)
        self.need("text")
        d = self.role_dims["text"]
        self.tab = [r for r in ("categorical", "numerical") if self.roles[r]]
        self.proj = nn.ModuleDict({r: nn.Linear(self.role_dims[r], d, bias=False) for r in self.tab})
        self.weight = nn.ParameterDict({r: nn.Parameter(torch.ones(d)) for r in self.tab})
        self.out_dim = d

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TabularOutput:
        p, _ = self.split(features, mask)
        x = cast(Tensor, p["text"])  # the constructor requires a text modality
        return TabularOutput(x + sum((self.weight[r] * self.proj[r](p[r]) for r in self.tab), torch.zeros_like(x)))
