import pytest

from bench.cli import main
from bench.default import default_benchmark


def test_models_and_datasets_list_the_registries(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("mlp", "simple_cnn", "resnet18", "mobilenet_v2"))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("digits", "mnist", "cifar10", "imagefolder"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: x\nmodels: [mlp\n", "malformed YAML"),
        ("name: x\nmodels: [mlpp]\ndatasets: [digits]\n", "unknown model 'mlpp'"),
        ("name: x\nmodels: [mlp]\ndatasets: [digits]\nbudget: {epochs: 0}\n", "budget.epochs"),
    ],
)
def test_bad_definition_is_one_line_exit_2(tmp_path, capsys, content, expected):
    path = tmp_path / "b.yaml"
    path.write_text(content)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and str(path) in err
    assert "Traceback" not in err


def test_flag_overrides_are_validated_too(tmp_path, capsys):
    path = tmp_path / "b.yaml"
    path.write_text("name: x\nmodels: [mlp]\ndatasets: [digits]\n")
    assert main(["run", str(path), "--models", "mlp,resnt18"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err


def test_set_flags_are_validated_and_passed_on_to_jobs(tmp_path, capsys):
    from bench.cli import _run_flags_as_args, build_parser

    path = tmp_path / "b.yaml"
    path.write_text("name: x\nmodels: [mlp]\ndatasets: [digits]\n")
    assert main(["run", str(path), "--set", "search_space.hflip=2.0"]) == 2
    assert "search_space.hflip: 2.0 is outside [0, 1]" in capsys.readouterr().err
    assert main(["run", str(path), "--set", "datasets.3.path=x"]) == 2
    assert "not an index of a 1-entry list" in capsys.readouterr().err
    args = build_parser().parse_args(
        ["submit", str(path), "--trials", "2", "--set", "search_space.rotation=[0, 15]"]
    )
    assert _run_flags_as_args(args) == ["--trials", "2", "--set", "search_space.rotation=[0, 15]"]


def test_submit_validates_the_definition_with_its_overrides_before_submitting(tmp_path, capsys):
    """A bad --set or flag is refused here, in one line, before any cluster is contacted (the
    address points nowhere: reaching it would be a different error)."""
    path = tmp_path / "b.yaml"
    path.write_text("name: x\nmodels: [mlp]\ndatasets: [digits]\n")
    nowhere = ["--address", "http://127.0.0.1:9"]
    assert main(["submit", str(path), *nowhere, "--set", "cv.folds=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cv.folds" in err and "127.0.0.1:9" not in err
    assert main(["submit", str(path), *nowhere, "--models", "mlp,resnt18"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    from bench.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "run", str(tmp_path / "missing.yaml")])


@pytest.mark.parametrize(
    ("flags", "after", "debug", "dashboard"),
    [([], [], False, False), (["--debug"], [], True, False), ([], ["--dashboard"], False, True)],
)
def test_debug_and_dashboard_reach_the_run(tmp_path, monkeypatch, flags, after, debug, dashboard):
    """--debug shows Ray's and Tune's own notices too, --dashboard starts Ray's dashboard with
    a local Ray: the run is told."""
    from types import SimpleNamespace

    import bench.runner

    seen = {}

    def run_benchmark(config, **options):
        seen.update(options)
        return SimpleNamespace(leaderboard=[{"status": "ok"}])

    monkeypatch.setattr(bench.runner, "run_benchmark", run_benchmark)
    path = tmp_path / "b.yaml"
    path.write_text(f"name: x\nmodels: [mlp]\ndatasets: [digits]\noutput: {tmp_path}\n")
    assert main([*flags, "run", str(path), *after]) == 0
    assert seen["debug"] is debug
    assert seen["dashboard"] is dashboard


def test_default_benchmark_is_shipped():
    assert default_benchmark().is_file()


def test_report_and_leaderboard_commands_need_neither_ray_nor_torch(tmp_path):
    import subprocess
    import sys

    from bench.testing.synthetic import write_synthetic_run

    write_synthetic_run(str(tmp_path), "b", ["d1"], ["alpha", "beta"])
    script = (
        "import sys; from bench.cli import main\n"
        f"assert main(['report', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}]) == 0\n"
        f"assert main(['leaderboard', {str(tmp_path)!r}, '--metric', 'accuracy']) == 0\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded & {'ray', 'torch', 'torchvision', 'optuna'}, loaded & {'ray', 'torch'}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "alpha" in done.stdout and (tmp_path / "out" / "report.html").is_file()


def test_report_on_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such results folder" in err


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = tmp_path / "b.yaml"
    path.write_text("name: x\nmodels: [mlp]\ndatasets: [digits]\n")
    assert main(["run", str(path), "--output", str(blocker / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output folder is not writable" in err


def test_resume_without_an_earlier_run_says_so(tmp_path, capsys):
    path = tmp_path / "b.yaml"
    path.write_text(f"name: x\nmodels: [mlp]\ndatasets: [digits]\noutput: {tmp_path / 'r'}\n")
    assert main(["run", str(path), "--resume"]) == 2
    assert "no earlier run of 'x' to resume" in capsys.readouterr().err
