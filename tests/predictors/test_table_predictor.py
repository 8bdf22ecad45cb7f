"""TablePredictor: one call from a DataFrame to predictions, saved without pickle; bad input named."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmrefine import TablePredictor
from mmrefine.core.errors import ConfigError, DataError
from tests.conftest import DATA_ROOT, requires_data

FAST = {"epochs": 8, "patience": None, "progress_bar": False, "batch_size": 32, "lr": 3e-3}


def shop(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Colour and size decide the label; a row id column to be ignored."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    size = rng.normal(10, 2, n)
    label = np.where((colour == "red") | (size > 11.5), "keep", "return")
    return pd.DataFrame({"id": np.arange(n) + 1000, "colour": colour, "size": size, "label": label})


def test_fit_predict_evaluate_embed_save_load(tmp_path: Path) -> None:
    train, test = shop(), shop(200, seed=1)
    p = TablePredictor(label="label", fusion="concat", run_dir=str(tmp_path / "run"), **FAST).fit(train)
    assert p.preprocessor.kinds == {"colour": "categorical", "size": "numerical"} and p.preprocessor.ignored == ["id"]
    pred = p.predict(test)
    assert set(pred.unique()) <= {"keep", "return"} and (pred.index == test.index).all()
    proba = p.predict_proba(test)
    assert list(proba.columns) == ["keep", "return"] and np.allclose(proba.sum(1), 1)
    scores = p.evaluate(test)
    assert set(scores) == {"accuracy", "f1", "f1_macro", "roc_auc", "pr_auc"}
    assert scores["accuracy"] > 0.85 and scores["roc_auc"] > 0.9  # the rule is learnt (majority class: 0.6 accuracy)
    assert p.embed(test).shape[0] == len(test)
    q = TablePredictor.load(p.save(tmp_path / "saved"))
    assert np.allclose(q.predict_proba(test).to_numpy(), proba.to_numpy(), atol=1e-6)
    assert not list((tmp_path / "saved").glob("*.pkl")) and not list((tmp_path / "saved").glob("*.pt"))


def test_unlabelled_rows_pretrain_the_refiner_and_regression_works(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train = shop()
    train.loc[:199, "label"] = None
    with caplog.at_level("INFO", logger="mmrefine"):
        TablePredictor(label="label", fusion="gmu", refiner=True, pretrain_epochs=2, run_dir=str(tmp_path / "r"), **FAST).fit(train)
    assert "200 of 400 training rows have no label in 'label'" in caplog.text
    assert (tmp_path / "r" / "pretrain" / "model.safetensors").is_file()
    reg = shop().assign(price=lambda d: 3 * d["size"] + (d["colour"] == "red") * 5)
    r = TablePredictor(label="price", fusion="concat", run_dir=str(tmp_path / "g"), **FAST).fit(reg.drop(columns="label"))
    assert r.preprocessor.task == "regression" and set(r.evaluate(reg)) == {"mae", "rmse", "r2"}
    with pytest.raises(ConfigError, match="predict_proba needs a classification label"):
        r.predict_proba(reg)


def test_bad_input_is_named_and_a_failed_fit_writes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(DataError, match="label column 'target' is not in the table"):
        TablePredictor(label="target", run_dir=str(run), **FAST).fit(shop())
    with pytest.raises(DataError, match="the training table is empty"):
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop().iloc[:0])
    with pytest.raises(ConfigError, match="needs a text modality"):  # the default combiner needs a text column
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop())
    assert not run.exists()
    p = TablePredictor(label="label", fusion="concat", class_weight="balanced", run_dir=str(run), **FAST).fit(shop())
    with pytest.raises(DataError, match=r"lacks column\(s\) \['size'\]"):
        p.predict(shop().drop(columns="size"))
    bad = shop().astype({"size": object})
    bad.loc[5, "size"] = "large"
    with pytest.raises(DataError, match="numerical column 'size' holds text: row 5"):
        p.predict(bad)
    assert len(p.predict(shop().assign(colour="purple", extra=1))) == 400  # unseen category, extra column: fine
    with pytest.raises(ConfigError, match="not fitted"):
        TablePredictor(label="label").predict(shop())


@requires_data("clothing_reviews")
def test_readme_example_runs_on_clothing_reviews(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README's Python example, as written, on the first 600 rows of each file (MiniLM
    on the full files costs minutes on 2 cores); it must beat the majority class clearly."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```python\nimport pandas as pd\nfrom mmrefine import TablePredictor")
    code = readme[start + len("```python\n"): readme.index("```", start + 10)]
    real_read = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda path, **kw: real_read(path, nrows=600, **kw))
    monkeypatch.chdir(tmp_path)  # runs/ is written here; the data root found by the tests replaces ../shared/data
    code = code.replace("../shared/data", str(DATA_ROOT))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    scores = scope["scores"]
    assert scores["roc_auc"] > 0.85 and scores["f1_macro"] > 0.6
