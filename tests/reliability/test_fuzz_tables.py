"""Generated tables through TablePredictor.fit / predict (hypothesis).

The property: a call either succeeds, with finite outputs of the right length and
predictions in the label column's own dtype, or raises one of mmrefine's errors, one line,
naming the column at fault (and the row, when a cell is) or saying what is wrong with the
whole table. Never another exception, never a non-finite output. The tables mix every
column kind and dtype with NaN, infinities, empty and blank strings, very long strings,
unicode, mixed-type object columns, duplicated and non-string column names, a single
row, one row per class and a single class.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mmrefine import TablePredictor
from mmrefine.core.errors import MMRefineError
from tests.reliability.fuzz import assert_one_line_naming, examples

KINDS = ("float", "int", "bigint", "bool", "text", "category", "mixed", "long_text", "missing")
NAMES = st.one_of(st.sampled_from(["a", "b", "Rating", "y", "é col", "0", "a b", "Review Text"]), st.integers(0, 3),
                  st.text(min_size=1, max_size=6))
TEXT = st.text(max_size=24)
TABLE_PHRASES = (
    r"training table is empty", r"no feature column", r"cannot be split", r"has one class", r"distinct value",
    r"duplicated column name", r"too few labelled rows", r"no training row has a label", r"no row has a label",
    r"the table is empty", r"is not in the table", r"too few labelled rows per class",
)


def _cells(kind: str) -> st.SearchStrategy:
    none = st.sampled_from([None, float("nan"), "", "  "])
    return {
        "float": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
        "int": st.integers(-1000, 1000),
        "bigint": st.one_of(st.integers(-(2**70), 2**70), st.none()),
        "bool": st.one_of(st.booleans(), st.none()),
        "text": st.one_of(TEXT, none),
        "category": st.sampled_from(["red", "blue", "green", "", None]),
        "mixed": st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=False), TEXT, st.booleans(), none),
        "long_text": st.text(min_size=200, max_size=1500),
        "missing": none,
    }[kind]


@st.composite
def columns(draw: st.DrawFn, n: int, names: list) -> pd.DataFrame:
    parts = []
    for name in names:
        kind = draw(st.sampled_from(KINDS))
        values = draw(st.lists(_cells(kind), min_size=n, max_size=n))
        parts.append(pd.Series(values, name=name, dtype=float if kind == "float" else None))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=range(n))


@st.composite
def labels(draw: st.DrawFn, n: int) -> pd.Series:
    kind = draw(st.sampled_from(["str", "str", "int", "int", "bool", "some_missing", "float", "one_per_class", "one_class"]))
    if kind == "one_per_class":
        return pd.Series([f"c{i}" for i in range(n)], name="y")
    if kind == "one_class":
        return pd.Series(["only"] * n, name="y")
    if kind == "float":
        return pd.Series(draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)), name="y")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), name="y")
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), name="y")
    values = draw(st.lists(st.one_of(st.sampled_from(["yes", "no"]), st.none()) if kind == "some_missing"
                           else st.sampled_from(["yes", "no", "maybe"]), min_size=n, max_size=n))
    return pd.Series(values, name="y")


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training table and a second table with the same column names and other cells."""
    n = draw(st.one_of(st.integers(12, 40), st.integers(1, 11)))
    names = draw(st.lists(NAMES, min_size=1, max_size=4))
    train = pd.concat([draw(columns(n, names)), draw(labels(n))], axis=1)
    m = draw(st.integers(1, 6))
    later = draw(columns(m, names))
    return train, later


def _check_outputs(p: TablePredictor, df: pd.DataFrame, label_dtype: object) -> None:
    pred = p.predict(df)
    assert len(pred) == len(df) and (pred.index == df.index).all()
    if p.preprocessor.task == "regression":
        assert pred.dtype == np.float64 and np.isfinite(pred.to_numpy()).all()
    else:
        assert pred.dtype == label_dtype, (pred.dtype, label_dtype)
        proba = p.predict_proba(df).to_numpy()
        assert proba.shape == (len(df), len(p.preprocessor.classes)) and np.isfinite(proba).all()
        assert np.allclose(proba.sum(1), 1)


def _property(train: pd.DataFrame, later: pd.DataFrame, **kwargs: object) -> None:
    names = [str(c) for c in train.columns]
    try:
        p = TablePredictor(label="y", fusion="concat", verbosity=0, **kwargs).fit(train)  # type: ignore[arg-type]
    except MMRefineError as exc:
        assert_one_line_naming(exc, names, TABLE_PHRASES)
        event(f"fit refused: {str(exc)[:40]}")
        return
    event("fitted")
    _check_outputs(p, train, train["y"].dtype)
    try:
        _check_outputs(p, later, train["y"].dtype)
        event("predicted on the second table")
    except MMRefineError as exc:
        assert_one_line_naming(exc, [str(c) for c in later.columns] + names, TABLE_PHRASES)
        event("second table refused")


@settings(max_examples=examples(60))
@given(tables())
def test_generated_tables_through_the_scikit_learn_members(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _property(*data, members=["linear", "gbm"], num_folds=2)


@settings(max_examples=examples(8))
@given(tables())
def test_generated_tables_through_the_network(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _property(*data, preset="fast", epochs=1, patience=None, batch_size=8)


# -- the defects the fuzzing found, kept as explicit regressions -------------------------------


def test_one_infinite_cell_is_named_by_column_and_row() -> None:
    import pytest

    from mmrefine.core.errors import DataError

    df = pd.DataFrame({"size": [1.0, 2.0, math.inf, 4.0] * 10, "colour": ["r", "g"] * 20, "y": ["a", "b", "b", "a"] * 10})
    with pytest.raises(DataError, match=r"numerical column 'size' holds an infinite value: row 2 has inf \(10 such row\(s\)\)"):
        TablePredictor(label="y", members=["linear"], verbosity=0).fit(df)
    p = TablePredictor(label="y", members=["linear"], verbosity=0).fit(df.replace(math.inf, 3.0))
    with pytest.raises(DataError, match=r"'size' holds an infinite value: row 2"):
        p.predict(df)


def test_numbers_near_the_float_limit_standardise_to_finite_values() -> None:
    df = pd.DataFrame({"x": [1e308, -1e308, 1e308, 5.0] * 5, "y": ["a", "b", "a", "b"] * 5})
    p = TablePredictor(label="y", members=["linear", "gbm"], num_folds=2, verbosity=0).fit(df)
    assert np.isfinite(p.predict_proba(df).to_numpy()).all()


def test_duplicated_and_non_string_column_names() -> None:
    import pytest

    from mmrefine.core.errors import DataError

    dup = pd.concat([pd.Series([1.0, 2.0] * 5, name="a"), pd.Series(["u", "v"] * 5, name="a"), pd.Series(["p", "q"] * 5, name="y")], axis=1)
    with pytest.raises(DataError, match=r"duplicated column name\(s\) \['a'\]"):
        TablePredictor(label="y", members=["linear"], verbosity=0).fit(dup)
    ints = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0] * 5, 1: ["u", "v", "u", "w"] * 5, "y": ["p", "q", "p", "q"] * 5})
    p = TablePredictor(label="y", members=["linear"], verbosity=0).fit(ints)
    assert set(p.preprocessor.kinds) == {"0", "1"} and len(p.predict(ints)) == 20
