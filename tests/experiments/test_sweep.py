"""A sweep interrupted mid-way and re-run completes without redoing finished runs."""

import json
from pathlib import Path

import pytest
import yaml

from mmrefine.cli import main
from mmrefine.core.errors import ConfigError
from mmrefine.experiments.sweep import load_sweep, read_records, run_sweep, summarize

REPO = Path(__file__).resolve().parents[2]
SMALL = {"data": {"views": ["fou", "kar"]}, "model": {"default_encoder": {"name": "mlp", "hidden": [16], "out_dim": 8}}}


def write_sweep(tmp: Path) -> Path:
    sweep = {
        "experiment": str(REPO / "configs" / "mfeat.yaml"),
        "seeds": [0, 1],
        "baseline": "concat",
        "missing": True,
        "noise": {"kind": "gaussian", "levels": [0.0, 1.0]},
        "retrieval": [1, 5],
        "subsets": True,
        "variants": {
            "concat": {**SMALL, "model": {**SMALL["model"], "fusion": {"name": "concat"}}},
            "gmu": {**SMALL, "model": {**SMALL["model"], "fusion": {"name": "gmu", "out_dim": 8}}},
        },
    }
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


class Stop(Exception):
    pass


def test_interrupted_sweep_resumes_without_redoing_or_duplicating(tmp_path: Path) -> None:
    path, out = write_sweep(tmp_path), tmp_path / "out"
    seen: list[tuple[str, int]] = []

    def stop_after_two(record: dict) -> None:
        seen.append((record["variant"], record["seed"]))
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(path, out, epochs=1, on_record=stop_after_two)
    assert [(r["variant"], r["seed"]) for r in read_records(out)] == [("concat", 0), ("concat", 1)]
    first = (out / "runs" / "concat" / "seed0" / "metrics.json").stat().st_mtime_ns

    again: list[tuple[str, int]] = []
    records = run_sweep(path, out, epochs=1, on_record=lambda r: again.append((r["variant"], r["seed"])))
    assert again == [("gmu", 0), ("gmu", 1)]  # finished runs were not redone
    assert sorted((r["variant"], r["seed"]) for r in records) == [("concat", 0), ("concat", 1), ("gmu", 0), ("gmu", 1)]
    assert (out / "runs" / "concat" / "seed0" / "metrics.json").stat().st_mtime_ns == first
    r = records[0]
    assert set(r["subsets"]) == {"fou", "kar"}  # proper non-empty subsets of two modalities
    assert r["subsets"]["fou"]["test/acc"] == pytest.approx(r["missing"]["kar"]["test/acc"])
    assert set(r["retrieval"]) == {"fou", "kar"} and r["retrieval"]["fou"]["5"] >= r["retrieval"]["fou"]["1"]
    assert set(r["missing"]) == {"fou", "kar"} and set(r["noise"]["fou"]) == {"0.0", "1.0"}
    assert r["noise"]["fou"]["0.0"]["test/acc"] == pytest.approx(r["test"]["test/acc"])
    rows = {c.name: c for c in summarize(records, "test/acc", "concat")}
    assert rows["gmu"].n == 2 and rows["concat"].n == 2


def test_a_line_cut_by_a_crash_is_redone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.jsonl").write_text(json.dumps({"variant": "a", "seed": 0, "test": {}}) + "\n" + '{"variant": "a", "se')
    assert [(r["variant"], r["seed"]) for r in read_records(out)] == [("a", 0)]


def test_sweep_config_errors(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("experiment: x.yaml\nvariants: {a: {}}\nbaseline: b\n")
    with pytest.raises(ConfigError, match="baseline 'b' is not a variant"):
        load_sweep(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("experiment: x.yaml\nvariant: {a: {}}\n")
    with pytest.raises(ConfigError, match="unknown config key 'variant'"):
        load_sweep(tmp_path / "s.yaml")


def test_sweep_cli_prints_p_values(tmp_path: Path, capsys) -> None:
    path = write_sweep(tmp_path)
    assert main(["sweep", "-c", str(path), "--out", str(tmp_path / "o"), "--epochs", "1", "--seeds", "0", "1"]) == 0
    printed = capsys.readouterr().out
    assert "p vs concat" in printed and "gmu" in printed
    # progress counts the runs of the seeds asked for, not every record in OUT
    assert main(["sweep", "-c", str(path), "--out", str(tmp_path / "o"), "--epochs", "1", "--seeds", "2"]) == 0
    progress = [line.split()[0] for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert progress == ["[1/2]", "[2/2]"]


def test_report_for_a_sweep_and_for_a_run(tmp_path: Path) -> None:
    path, out = write_sweep(tmp_path), tmp_path / "out"
    run_sweep(path, out, epochs=1)
    assert main(["report", str(out), "--baseline", "concat", "--metric", "test/acc"]) == 0
    report = (out / "report.md").read_text()
    assert "| gmu | 0,1 |" in report and "Relative robustness" in report and "no kar" in report
    assert "Unimodal-query retrieval" in report and "top-5" in report
    assert "Percentage drop" in report and "only these modalities present" in report
    import statistics

    from mmrefine.evaluation.statistics import compare
    from mmrefine.experiments.sweep import read_records

    records = read_records(out)
    means = {v: [statistics.fmean(r["missing"][m]["test/acc"] for m in r["missing"]) for r in records if r["variant"] == v]
             for v in ("concat", "gmu")}
    p = {c.name: c.p_value for c in compare(means, "concat")}["gmu"]
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("| mean | p |"))
    row = next(line for line in lines[start:] if line.startswith("| gmu |"))
    assert row.rstrip(" |").endswith(f"{p:.4f}")  # the mean over missing views, Welch p against the baseline
    assert (out / "robustness_fou.png").stat().st_size > 1000
    run = out / "runs" / "gmu" / "seed0"
    assert main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    assert "test/acc" in text and "tsne.png" in text and "gates.png" in text and "fusion:" in text
    for f in ("training_curves.png", "tsne.png", "gates.png", "tsne_modalities.png"):
        assert (run / f).stat().st_size > 1000
    assert main(["report", str(tmp_path)]) == 2


def test_run_report_probes_every_progressive_step(tmp_path: Path) -> None:
    from mmrefine.training.engine import fit
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, model={"fusion": {"name": "gmu", "out_dim": 8}, "progressive": {"steps": 2, "inject_at": "net.2"}}, trainer={"max_epochs": 1})
    res = fit(cfg)
    assert main(["report", str(res.run_dir)]) == 0
    text = (res.run_dir / "report.md").read_text()
    assert "per Progressive Fusion step" in text and "| 2 |" in text


def test_probes_per_unrolled_step_are_recorded_and_reported(tmp_path: Path) -> None:
    sweep = {
        "experiment": str(REPO / "configs" / "mfeat.yaml"),
        "seeds": [0, 1],
        "missing": False,
        "probes": True,
        "variants": {
            "concat": {**SMALL, "model": {**SMALL["model"], "fusion": {"name": "concat"}}},
            "profusion": {**SMALL, "model": {**SMALL["model"], "fusion": {"name": "concat", "hidden": [8]},
                                              "progressive": {"steps": 3, "backprojection": "linear"}}},
        },
    }
    path, out = tmp_path / "sweep.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(sweep))
    records = run_sweep(path, out, epochs=1)
    plain, pro = records[0]["probes"], records[2]["probes"]
    assert list(plain) == ["1"] and list(pro) == ["1", "2", "3"]
    assert set(pro["3"]) == {"fou", "kar"} and all(0.0 <= a <= 1.0 for s in pro.values() for a in s.values())
    assert main(["report", str(out), "--baseline", "concat", "--metric", "test/acc"]) == 0
    lines = (out / "report.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| variant | modality | step 1 | step 2 | step 3 | p |"))
    rows = [line.split(" | ") for line in lines[head + 2: head + 6]]
    assert [r[0].strip("| ") for r in rows] == ["concat", "concat", "profusion", "profusion"]
    assert rows[0][3] == "-" and rows[0][4] == "-" and rows[2][4] != "-"  # a plain model has one step


def test_shuffled_modality_terms_are_recorded_and_reported(tmp_path: Path) -> None:
    sweep = {
        "experiment": str(REPO / "configs" / "mfeat.yaml"),
        "seeds": [0],
        "missing": False,
        "shuffled": True,
        "variants": {"refiner": {**SMALL, "model": {**SMALL["model"], "refiner": {"gamma": 0.1}}}},
    }
    path, out = tmp_path / "sweep.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(sweep))
    r = run_sweep(path, out, epochs=2)[0]["shuffled"]
    assert set(r) == {"none", "fou", "kar"}
    assert r["none"]["acc"] == pytest.approx(run_sweep(path, out)[0]["test"]["test/acc"])  # 'none' is the plain test split
    assert r["fou"]["refiner_fou"] != r["none"]["refiner_fou"] and r["fou"]["acc"] < r["none"]["acc"]
    assert main(["report", str(out), "--metric", "test/acc"]) == 0
    assert "refiner loss: kar" in (out / "report.md").read_text()


def test_shuffle_modality_moves_every_sample_and_keeps_the_rest() -> None:
    import torch

    from mmrefine.data.dataset import TensorMultimodalDataset
    from mmrefine.evaluation.robustness import shuffle_modality

    ds = TensorMultimodalDataset({"a": torch.arange(50.0)[:, None], "b": torch.arange(50.0)[:, None]}, torch.arange(50))
    s = shuffle_modality(ds, "a", seed=3)
    moved = s.inputs["a"].flatten()
    assert torch.all(moved != torch.arange(50.0)) and sorted(moved.tolist()) == list(range(50))
    assert torch.equal(s.inputs["b"], ds.inputs["b"]) and torch.equal(s.labels, ds.labels)


def write_distill_sweep(tmp: Path, teacher: str = "big") -> Path:
    big = {**SMALL, "model": {**SMALL["model"], "default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16}}}
    sweep = {
        "experiment": str(REPO / "configs" / "mfeat.yaml"),
        "seeds": [0, 1],
        "missing": False,
        "variants": {  # the students come first in the file: the sweep must still run the teacher first
            "kd": {**SMALL, "model": {**SMALL["model"], "distill": {"teacher": {"variant": teacher}, "single": False}}},
            "msd": {**SMALL, "model": {**SMALL["model"], "distill": {"teacher": {"variant": teacher}, "weighting": "importance"}}},
            "big": big,
        },
    }
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.mark.parametrize("jobs", [1, 2])
def test_students_distil_from_the_teacher_run_of_their_own_seed(tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "out"
    order: list[tuple[str, int]] = []
    run_sweep(write_distill_sweep(tmp_path), out, epochs=1, jobs=jobs, on_record=lambda r: order.append((r["variant"], r["seed"])))
    assert sorted(order) == sorted((v, s) for v in ("kd", "msd", "big") for s in (0, 1))
    for seed in (0, 1):
        assert order.index(("big", seed)) < min(order.index(("kd", seed)), order.index(("msd", seed)))
        for student in ("kd", "msd"):
            cfg = yaml.safe_load((out / "runs" / student / f"seed{seed}" / "config.yaml").read_text())
            assert cfg["model"]["distill"]["teacher"] == str(out / "runs" / "big" / f"seed{seed}")


def test_a_teacher_variant_must_exist_and_not_loop(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="teacher.variant 'nope' is not a variant"):
        load_sweep(write_distill_sweep(tmp_path, teacher="nope"))
    (tmp_path / "s.yaml").write_text("experiment: x.yaml\nvariants:\n  a: {model: {distill: {teacher: {variant: b}}}}\n"
                                     "  b: {model: {distill: {teacher: {variant: a}}}}\n")
    with pytest.raises(ConfigError, match="each other's teachers"):
        load_sweep(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("experiment: x.yaml\nvariants:\n  a: {model: {distill: {teacher: {run: b}}}}\n")
    with pytest.raises(ConfigError, match=r"run directory or \{variant: NAME\}"):
        load_sweep(tmp_path / "s.yaml")


@pytest.mark.slow
def test_ray_executor_runs_a_sweep_resumably_with_teachers_first(tmp_path: Path) -> None:
    """A local Ray instance runs the sweep's runs as tasks; records land in the same
    runs.jsonl, a second call redoes nothing, and students wait for their teacher."""
    pytest.importorskip("ray")
    path, out = write_distill_sweep(tmp_path), tmp_path / "out"
    order: list[tuple[str, int]] = []
    run_sweep(path, out, seeds=[0], epochs=1, executor="ray", on_record=lambda r: order.append((r["variant"], r["seed"])))
    assert order[0] == ("big", 0) and sorted(order) == [("big", 0), ("kd", 0), ("msd", 0)]
    again: list[tuple[str, int]] = []
    records = run_sweep(path, out, seeds=[0], epochs=1, executor="ray", on_record=lambda r: again.append(r["variant"]))
    assert again == [] and len(records) == 3
    assert (out / "runs" / "msd" / "seed0" / "model.safetensors").is_file()


def test_unknown_executor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--executor must be one of local, ray"):
        run_sweep(write_distill_sweep(tmp_path), tmp_path / "o", seeds=[0], epochs=1, executor="slurm")
