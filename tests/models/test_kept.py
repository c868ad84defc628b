"""A kept model whose files were damaged is named in one line by `bench predict`, never a
traceback (bench/models/kept.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.errors import BenchError
from bench.models.kept import META, WEIGHTS, load_kept_model, save_kept_model
from bench.registry.models import create_model
from bench.results.store import RunStore
from bench.train.inputs import InputAdapter

HPARAMS = {"hidden_dim": 16, "depth": 1, "dropout": 0.0, "shrink": 0.5}


def kept_run(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    data = SimpleNamespace(classes=["a", "b"], channels=1, image_size=8, fingerprint="f")
    module = create_model("mlp", 2, 1, 8, **HPARAMS).module
    adapter = InputAdapter(1, 8, (0.5,), (0.25,))
    folder = save_kept_model(store, "mlp", "digits", module, HPARAMS, adapter, data, 0)
    return store, tmp_path / "run" / folder


def test_a_kept_model_loads_as_it_was_saved(tmp_path):
    store, _ = kept_run(tmp_path)
    kept = load_kept_model(store.path, "mlp", "digits")
    assert kept.classes == ["a", "b"]


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda folder: (folder / WEIGHTS).write_bytes(b"not a torch file"), "UnpicklingError"),
        (lambda folder: (folder / META).write_text('{"model": '), "JSONDecodeError"),
        (
            lambda folder: (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:200]),
            "cannot be loaded",
        ),
    ],
)
def test_damaged_kept_model_files_are_named_in_one_line(tmp_path, damage, named, capsys):
    from bench.cli import main

    store, folder = kept_run(tmp_path)
    damage(folder)
    with pytest.raises(BenchError, match="the kept model models/mlp@digits cannot be loaded"):
        load_kept_model(store.path, "mlp", "digits")
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    assert main(["predict", store.path, str(image), "--model", "mlp", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "restore them" in err
