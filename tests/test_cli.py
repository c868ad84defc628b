import pytest

from bench.cli import default_benchmark, main


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


def test_debug_shows_the_traceback(tmp_path):
    from bench.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "run", str(tmp_path / "missing.yaml")])


def test_default_benchmark_is_shipped():
    assert default_benchmark().is_file()
