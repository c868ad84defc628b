"""bench export --mlflow: a synthetic run exported into a SQLite store in tmp_path and read
back through MlflowClient, compared with the run's own Parquet files."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from bench.cli import main
from bench.export import export_runs, tracking_uri
from bench.export.tracked import tracker_name
from bench.results.schema import LEADERBOARD
from bench.results.store import RunStore, kept_folder
from bench.testing.synthetic import write_synthetic_run

mlflow_tracking = pytest.importorskip("mlflow.tracking", reason='needs pip install -e ".[mlflow]"')

MODELS = ["mlp", "simple_cnn"]
DEFINITION = {
    "name": "synth",
    "models": MODELS,
    "datasets": [{"name": "digits"}],
    "search": {"trials": 2, "seed": 0, "metric": "f1_macro"},
    "cv": {"folds": 2, "seed": 0},
    "evaluation": {"repeats": 2},
}
WEIGHTS = b"not really a state dict"


def _run(output: Path, run_id: str) -> RunStore:
    """A 2-model, 2-repeat run with a definition, an environment and one kept model."""
    store = write_synthetic_run(
        str(output), "synth", ["digits"], MODELS, trials=2, folds=2, test_samples=30,
        repeats=2, resamples=50, run_id=run_id,
    )  # fmt: skip
    store.write_text("config.yaml", yaml.safe_dump(DEFINITION, sort_keys=False))
    store.write_json("environment.json", {"python": "3.11", "git_commit": "abc1234"})
    store.write_bytes(f"{kept_folder('mlp', 'digits')}/weights.pt", WEIGHTS)
    store.write_json(f"{kept_folder('mlp', 'digits')}/model.json", {"model": "mlp"})
    return store


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The run, its export and a client of the store it went to."""
    base = tmp_path_factory.mktemp("export")
    store = _run(base / "results", "20260101-120000-abcd")
    done = export_runs([store.uri], str(base / "mlruns"))
    client = mlflow_tracking.MlflowClient(done[0].tracking_uri)
    return store, done, client


def _runs(client, experiment: str) -> tuple[object, dict[str, object]]:
    """(parent run, {pairing: child run}) of the one exported benchmark run."""
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = {r.info.run_name: r for r in runs if r.info.run_id != parents[0].info.run_id}
    assert all(
        c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children.values()
    )
    return parents[0], children


def test_each_leaderboard_row_is_a_nested_run_with_its_figures(exported):
    store, done, client = exported
    parent, children = _runs(client, "synth")
    assert done[0].mlflow_run_id == parent.info.run_id and done[0].changed
    board = store.read_table("leaderboard.parquet").to_pylist()
    assert (
        sorted(children)
        == sorted(f"{r['model']}@{r['dataset']}" for r in board)
        == [
            "mlp@digits",
            "simple_cnn@digits",
        ]
    )
    for row in board:
        child = children[f"{row['model']}@{row['dataset']}"]
        assert child.info.status == "FINISHED"
        best = json.loads(row["best_params"])
        assert child.data.params == {k: str(v) for k, v in best.items()}
        numbers = {
            f.name: row[f.name]
            for f in LEADERBOARD
            if not pa.types.is_string(f.type) and f.name not in ("refit_worker_pid", "best_trial")
        }
        expected = {k: v for k, v in numbers.items() if v is not None and math.isfinite(v)}
        logged = {k: v for k, v in child.data.metrics.items() if not k.startswith("repeat/")}
        assert logged == pytest.approx(expected)
        # CV, test intervals, compute and deployment all there; NaN and null left out
        for name in ("cv_f1_macro_std", "test_f1_macro_low", "gpu_seconds", "latency_ms", "macs"):
            assert name in logged
        assert "test_top5_accuracy" not in logged and "peak_memory_mb" not in logged
        tags = child.data.tags
        assert tags["bench.run_id"] == store.run_id and tags["bench.status"] == "ok"
        assert tags["bench.best_trial"] == str(row["best_trial"])
        assert tags["bench.inference_device"] == row["inference_device"]


def test_each_repeat_test_score_is_a_step_of_its_pairing(exported):
    store, _, client = exported
    _, children = _runs(client, "synth")
    replicates = store.read_table("replicates.parquet").to_pylist()
    for pairing, child in children.items():
        history = client.get_metric_history(child.info.run_id, "repeat/test_accuracy")
        expected = {
            r["repeat"]: r["test_accuracy"]
            for r in replicates
            if f"{r['model']}@{r['dataset']}" == pairing
        }
        assert {m.step: m.value for m in history} == pytest.approx(expected)
        assert sorted(expected) == [0, 1]


def test_the_parent_holds_the_definition_and_the_environment(exported):
    store, _, client = exported
    parent, _ = _runs(client, "synth")
    assert parent.info.run_name == store.run_id
    assert parent.data.tags["bench.run_id"] == store.run_id
    assert parent.data.tags["mlflow.source.git.commit"] == "abc1234"
    params = parent.data.params
    assert params["search.trials"] == "2" and params["search.metric"] == "f1_macro"
    assert params["models"] == '["mlp", "simple_cnn"]' and params["datasets.0.name"] == "digits"
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert files == {"config.yaml", "environment.json"}


def test_artifacts_are_the_confusion_matrix_and_the_kept_model(exported, tmp_path):
    store, _, client = exported
    _, children = _runs(client, "synth")
    board = {r["model"]: r for r in store.read_table("leaderboard.parquet").to_pylist()}
    for model, child in children.items():
        files = {a.path for a in client.list_artifacts(child.info.run_id)}
        row = board[model.split("@")[0]]
        expected = {"confusion_matrix.csv", "confusion_matrix.png", "per_class.json"}
        assert files == expected | ({"model"} if model == "mlp@digits" else set())
        folder = Path(client.download_artifacts(child.info.run_id, "", str(tmp_path / model)))
        table = list(csv.reader(io.StringIO((folder / "confusion_matrix.csv").read_text())))
        assert table[0][1:] == json.loads(row["classes"])
        assert [[int(c) for c in r[1:]] for r in table[1:]] == json.loads(row["test_confusion"])
        assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    model = Path(tmp_path / "mlp@digits" / "model")
    assert (model / "weights.pt").read_bytes() == WEIGHTS
    assert json.loads((model / "model.json").read_text()) == {"model": "mlp"}


def test_exporting_again_adds_no_run_and_takes_changes(exported, tmp_path):
    _, done, client = exported
    target = done[0].tracking_uri
    store = _run(tmp_path / "results", "20260102-120000-abcd")
    first = export_runs([store.uri], target, experiment="again")
    parent, children = _runs(client, "again")
    again = export_runs([store.uri], target, experiment="again")
    assert not again[0].changed and again[0].mlflow_run_id == first[0].mlflow_run_id
    assert _runs(client, "again")[1].keys() == children.keys()
    # The run changes (a resume finished more work): the same parent, its children replaced.
    rows = store.read_table("leaderboard.parquet").to_pylist()
    rows[0]["cpu_seconds"] = 12345.0
    store.write_table("leaderboard", rows)
    changed = export_runs([store.uri], target, experiment="again")
    assert changed[0].changed and changed[0].mlflow_run_id == parent.info.run_id
    _, now = _runs(client, "again")
    assert len(now) == 2 and not {c.info.run_id for c in now.values()} & {
        c.info.run_id for c in children.values()
    }
    pairing = f"{rows[0]['model']}@{rows[0]['dataset']}"
    assert now[pairing].data.metrics["cpu_seconds"] == 12345.0


def test_the_cli_prints_one_line_per_run(exported, capsys):
    store, done, _ = exported
    folder = str(Path(store.path).parent)  # the benchmark's folder: every run below it
    assert main(["export", folder, "--mlflow", done[0].tracking_uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert done[0].mlflow_run_id in out[0] and done[0].tracking_uri in out[0]
    assert "unchanged" in out[0]


def test_the_cli_default_is_a_sqlite_store_in_mlruns(exported, tmp_path, monkeypatch, capsys):
    store, _, _ = exported
    monkeypatch.chdir(tmp_path)
    assert main(["export", store.uri, "--mlflow", "--experiment", "here"]) == 0
    assert f"sqlite:///{tmp_path}/mlruns/mlflow.db" in capsys.readouterr().out
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlruns"]  # artifacts inside it too
    assert (tmp_path / "mlruns" / "artifacts" / "here").is_dir()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{run}"], "bench export: say where to: --mlflow [TRACKING_URI]"),
        (["export", "{tmp}/none", "--mlflow", "{tmp}/m"], "no such results folder"),
    ],
)
def test_cli_errors_are_one_line_exit_2(exported, tmp_path, capsys, argv, message):
    store, _, _ = exported
    argv = [a.format(run=store.uri, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_without_mlflow_the_error_names_the_extra(exported, tmp_path, monkeypatch, capsys):
    store, _, _ = exported
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    assert main(["export", store.uri, "--mlflow", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == (
        'BenchError: bench export --mlflow needs MLflow: pip install -e ".[mlflow]"\n'
    )
    assert not (tmp_path / "m").exists()


def test_tracking_targets():
    assert tracking_uri("/data/runs") == ("sqlite:////data/runs/mlflow.db", "/data/runs")
    assert tracking_uri("sqlite:////data/x.db") == ("sqlite:////data/x.db", "/data")
    assert tracking_uri("http://mlflow:5000") == ("http://mlflow:5000", None)
    assert tracker_name("lr*2 (log)") == "lr_2 _log_"
