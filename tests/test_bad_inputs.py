"""Bad input, each refused before Ray starts: one line naming the problem and the fix, exit
status 2, and nothing a user already has touched (an earlier run's folder, a report, a file of
their own beside them). The table of the closing note of issue 24 is this test's table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.config import validate_benchmark
from bench.results.store import RunStore
from bench.runner import save_definition

GOOD = {
    "name": "b",
    "models": ["mlp"],
    "datasets": ["digits"],
    "search": {"trials": 2},
    "cv": {"folds": 2},
}


def with_(**changes) -> dict:
    return {**GOOD, **changes}


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` with a digest of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A user's folder: an earlier run of `b` (its definition, a leaderboard), a report and a
    file of their own in the output folder."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    run = RunStore(str(results / "b" / "20260101-000000-abcd"))
    save_definition(run, validate_benchmark({**GOOD, "output": str(results)}, source="b"))
    (Path(run.path) / "leaderboard.parquet").write_bytes(b"the user's finished leaderboard")
    (results / "b" / "report").mkdir()
    (results / "b" / "report" / "report.html").write_text("<p>an earlier report</p>")
    (results / "notes.txt").write_text("mine")
    return tmp_path


def definition(workspace: Path, raw: dict | str | bytes, name: str = "b.yaml") -> str:
    path = workspace / name
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        body = raw if isinstance(raw, str) else yaml.safe_dump({"output": "results", **raw})
        path.write_text(body)
    return str(path)


RUN = "results/b/20260101-000000-abcd"

# (what is wrong, the command's arguments (FILE: the definition written from `raw`), the
# definition, what the one line says)
CASES = [
    ("malformed YAML", ["run", "FILE"], "models: [mlp\n", "malformed YAML"),
    ("a key given twice", ["run", "FILE"], "name: b\nname: c\nmodels: [mlp]\n", "twice"),
    ("a file that is not UTF-8", ["run", "FILE"], b"name: \xff\xfe\n", "not UTF-8 text"),
    ("no such file", ["run", "missing.yaml"], None, "no such benchmark file"),
    ("an unknown key", ["run", "FILE"], with_(serach={"trials": 2}), "unknown key"),
    ("an unknown model", ["run", "FILE"], with_(models=["resnet19"]), "unknown model"),
    ("an unknown dataset", ["run", "FILE"], with_(datasets=["mnits"]), "unknown dataset"),
    ("no models", ["run", "FILE"], with_(models=[]), "models"),
    ("no datasets", ["run", "FILE"], with_(datasets=[]), "datasets"),
    ("--models ''", ["run", "FILE", "--models", ""], GOOD, "models"),
    ("a name of dots", ["run", "FILE"], with_(name=".."), "name"),
    ("a name with a slash", ["run", "FILE"], with_(name="a/b"), "name"),
    (
        "lr as a word",
        ["run", "FILE"],
        with_(search_space={"lr": "fast"}),
        "lr",
    ),
    (
        "a negative lr",
        ["run", "FILE"],
        with_(search_space={"lr": {"type": "loguniform", "low": -1, "high": 0.1}}),
        "lr",
    ),
    (
        "low above high",
        ["run", "FILE"],
        with_(search_space={"dropout": {"type": "uniform", "low": 0.5, "high": 0.1}}),
        "low",
    ),
    ("batch size 0", ["run", "FILE"], with_(budget={"batch_size": 0}), "batch_size"),
    ("one fold", ["run", "FILE"], with_(cv={"folds": 1}), "folds"),
    (
        "test fraction 1.5",
        ["run", "FILE"],
        with_(cv={"folds": 2, "test_fraction": 1.5}),
        "test_fraction",
    ),
    ("an unknown metric", ["run", "FILE"], with_(search={"metric": "f1"}), "metric"),
    (
        "the same dataset twice",
        ["run", "FILE"],
        with_(datasets=["digits", "digits"]),
        "list it once",
    ),
    (
        "two trees whose names collide in file names",
        ["run", "FILE"],
        with_(
            datasets=[
                {"name": "imagefolder", "path": "/data/my photos"},
                {"name": "imagefolder", "path": "/data2/my_photos"},
            ]
        ),
        "would share the run's files",
    ),
    (
        "two trees in folders of one name",
        ["run", "FILE"],
        with_(
            datasets=[
                {"name": "imagefolder", "path": "/a/train"},
                {"name": "imagefolder", "path": "/b/train"},
            ]
        ),
        "rename one of the folders",
    ),
    (
        "overrides for a dataset not in the benchmark",
        ["run", "FILE"],
        with_(overrides={"mlp@mnist": {"lr": 0.1}}),
        "mnist",
    ),
    ("--set with no value", ["run", "FILE", "--set", "cv.folds"], GOOD, "KEY=VALUE"),
    (
        "--set past a list's end",
        ["run", "FILE", "--set", "datasets.3.path=x"],
        GOOD,
        "not an index",
    ),
    (
        "--resume of a folder that is no run",
        ["run", "FILE", "--resume", "results/b"],
        GOOD,
        "not a bench run folder",
    ),
    (
        "--resume with no earlier run",
        ["run", "FILE", "--resume"],
        with_(name="never_ran"),
        "no earlier run",
    ),
    (
        "--resume with other folds",
        ["run", "FILE", "--resume", RUN, "--folds", "3"],
        GOOD,
        "cv.folds is 3, the run had 2",
    ),
    (
        "--resume with fewer trials",
        ["run", "--resume", RUN, "--trials", "1"],
        None,
        "fewer than the run's 2",
    ),
    ("a report over a run", ["report", RUN, "--out", RUN], None, "that is a run folder"),
    ("a report of nothing", ["report", "results/nothing"], None, "no such results folder"),
    ("an unknown report metric", ["report", "results", "--metric", "f9"], None, "metric"),
    ("a report of a damaged leaderboard", ["report", RUN], None, "not a readable Parquet file"),
    ("an audit of a folder that is no run", ["audit", "results/b"], None, "not a bench run folder"),
    ("an audit of a damaged run", ["audit", RUN], None, "not a readable Parquet file"),
]


@pytest.mark.parametrize(("wrong", "args", "raw", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_is_touched(
    workspace, capsys, wrong, args, raw, says
):
    before = tree(workspace / "results")
    if raw is not None:
        args = [definition(workspace, raw) if a == "FILE" else a for a in args]
    assert main(args) == 2, capsys.readouterr()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert tree(workspace / "results") == before  # nothing a user has is touched


def test_the_table_has_at_least_25_inputs():
    assert len(CASES) >= 25
