"""Checks before a run starts: fold counts against every repeat's smallest class, read from
labels alone, and resources on the local instance bench would start."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bench.config import DatasetConfig, validate_benchmark
from bench.errors import BenchError, ConfigError
from bench.preflight import check_before_start, check_fold_counts, local_resources
from bench.registry import DATASETS
from bench.testing.writers import write_cifar10, write_image_tree, write_mnist


def _options(name: str, tmp_path) -> DatasetConfig:
    if name == "mnist":
        return DatasetConfig(name="mnist", root=str(write_mnist(tmp_path, train=30, test=10)))
    if name == "cifar10":
        return DatasetConfig(name="cifar10", root=str(write_cifar10(tmp_path).parent))
    if name == "imagefolder":
        tree = write_image_tree(tmp_path / "tree", ("a", "b", "c"), per_class=3, size=8)
        (tree / "a" / "notes.txt").write_text("not an image")
        return DatasetConfig(name="imagefolder", path=str(tree), image_size=8)
    return DatasetConfig(name=name)


@pytest.mark.parametrize("name", DATASETS.names())
def test_labels_read_without_decoding_equal_the_loaders_labels(name, tmp_path):
    """Every registered dataset's label reader gives the labels its loader gives (the fold
    check would otherwise judge another pool than the run's)."""
    options = _options(name, tmp_path)
    spec = DATASETS.get(name)
    assert spec.labels is not None, f"dataset '{name}' has no label reader"
    labels, official_test = spec.labels(options)
    if name == "imagefolder":  # the loader refuses the .txt; the reader never counts it
        (tmp_path / "tree" / "a" / "notes.txt").unlink()
    loaded = spec.load(options)
    assert np.array_equal(labels, loaded.y)
    assert official_test == (loaded.test_y is not None)


def test_label_readers_leave_missing_files_to_the_loader(tmp_path):
    assert DATASETS.get("mnist").labels(DatasetConfig(name="mnist", root=str(tmp_path))) is None
    missing = DatasetConfig(name="imagefolder", path=str(tmp_path / "nowhere"))
    assert DATASETS.get("imagefolder").labels(missing) is None


def _tree_benchmark(tmp_path, per_class: int, folds: int, **changes) -> dict:
    tree = write_image_tree(tmp_path / "tree", ("a", "b"), per_class=per_class, size=8)
    return {
        "name": "small",
        "models": ["mlp"],
        "datasets": [{"name": "imagefolder", "path": str(tree), "image_size": 8}],
        "cv": {"folds": folds, "test_fraction": 0.25},
        "evaluation": {"repeats": 2},
        "output": str(tmp_path / "results"),
        **changes,
    }


def test_a_fold_count_above_the_smallest_class_is_refused_naming_the_dataset(tmp_path):
    # 8 per class, a quarter held out: 6 per class in every repeat's CV pool
    config = validate_benchmark(_tree_benchmark(tmp_path, 8, folds=7), source="b.yaml")
    with pytest.raises(ConfigError, match=r"datasets\[0\] \(imagefolder@tree\): cv\.folds: 7 "):
        check_fold_counts(config)
    check_fold_counts(validate_benchmark(_tree_benchmark(tmp_path, 8, folds=6), source="b"))


def test_bench_run_refuses_it_before_ray_starts_or_a_folder_exists(tmp_path, monkeypatch, capsys):
    import yaml

    import bench.driver
    from bench.cli import main

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started before the definition was checked")

    monkeypatch.setattr(bench.driver, "connect", no_ray)
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(_tree_benchmark(tmp_path, 8, folds=7)))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use folds <= 6" in err
    assert not (tmp_path / "results").exists()


def test_a_gpu_request_on_a_gpu_less_machine_is_refused_before_ray_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    raw = _tree_benchmark(tmp_path, 8, folds=2, resources={"gpus_per_worker": 1})
    config = validate_benchmark(raw, source="b.yaml")
    assert local_resources()["GPU"] == 0
    with pytest.raises(BenchError, match=r"has no GPU; use --set resources\.gpus_per_worker=0"):
        check_before_start(config, local=True)
    check_before_start(config, local=False)  # a cluster may gain GPU nodes: the run decides


@pytest.mark.parametrize(
    ("datasets", "resuming", "imported"),
    [
        (["digits"], False, False),
        (["digits", "mnist"], False, True),
        (["digits"], True, True),
        ([{"name": "digits", "image_size": 32}], False, True),  # torch resizes it
    ],
)
def test_a_driver_imports_torch_before_ray_only_when_the_run_needs_it(
    tmp_path, datasets, resuming, imported
):
    """MNIST and CIFAR-10 are read through torchvision in the driver, digits at another size
    resized by torch, and a resume may read checkpoints: torch is imported then, at the start
    (imported late it can fail to load); otherwise never (~270 MB)."""
    code = (
        "import sys\nfrom bench.config import validate_benchmark\n"
        "from bench.preflight import import_torch_first\n"
        f"config = validate_benchmark({{'name': 'x', 'models': ['mlp'], 'datasets': {datasets},"
        f" 'output': {str(tmp_path)!r}}})\n"
        f"import_torch_first(config, resuming={resuming})\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(imported)
