"""The reference experiments shipped in search_spaces/, each run end to end at tiny scale on
data written in its dataset's own format (MNIST IDX, CIFAR-10 batches, PNG trees) and with
ImageNet weight files written where torchvision's weights API caches its downloads."""

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.config import load_benchmark
from bench.testing.writers import (
    write_cifar10,
    write_image_tree,
    write_imagenet_weights,
    write_mnist,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SHIPPED = Path(__file__).resolve().parent.parent / "search_spaces"
# Every definition as shipped, only smaller: one trial, two folds, one epoch, small batches.
TINY = {
    "search.trials": 1,
    "evaluation.repeats": 1,
    "cv.folds": 2,
    "budget.epochs": 1,
    "budget.batch_size": 8,
    "model_budgets": {},
}
SCENES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
# The test labels the writers below put in each dataset's own files, in file order: a loader
# that misread, reordered or relabelled the files could not reproduce them.
WRITTEN_TEST_LABELS = {
    "mnist": list(np.arange(10) % 10),  # write_mnist: labels cycle 0..9
    "cifar10": [i % 3 for i in range(3)],  # write_cifar10(classes=3): cycle 0..2
    "imagefolder@scenes": list(range(len(SCENES))),  # scenes/test: one image per class
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference-data")
    write_mnist(root / "mnist", train=40, test=10)
    # Three of the ten classes: the 224 px ImageNet pairings cost seconds per image on a CPU.
    write_cifar10(root / "cifar10", per_batch=2, test=3, classes=3)
    write_image_tree(root / "mine", classes=("ants", "bees", "wasps"), per_class=5, size=24)
    write_image_tree(root / "scenes" / "train", classes=SCENES, per_class=2, size=24)
    write_image_tree(root / "scenes" / "test", classes=SCENES, per_class=1, size=24, seed=3)
    return root


EXPERIMENTS = {
    "resnet_imagefolder": lambda root: {"datasets.0.path": str(root / "mine")},
    "transfer_scenes": lambda root: {"datasets.0.path": str(root / "scenes")},
    "mlp_mnist": lambda root: {"datasets.0.root": str(root / "mnist")},
    "cnn_cifar10": lambda root: {"datasets.0.root": str(root / "cifar10")},
    "deep_cnn_mnist_cifar10": lambda root: {
        "datasets.0.root": str(root / "mnist"),
        "datasets.1.root": str(root / "cifar10"),
    },
}


def test_every_shipped_reference_experiment_is_covered():
    shipped = {p.stem for p in SHIPPED.glob("*.yaml")} - {"default"}
    assert shipped == set(EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_reference_experiment_runs_end_to_end(name, written, tmp_path, ray_session):
    from bench.runner import run_benchmark

    overrides = {**TINY, **EXPERIMENTS[name](written), "output": str(tmp_path / "results")}
    config = load_benchmark(SHIPPED / f"{name}.yaml", overrides)
    for model, dataset in config.pairings():
        if config.space_for(model, dataset.key).get("weights", None) is not None:
            write_imagenet_weights(model)
    summary = run_benchmark(config, echo=lambda line: None)
    board = {(row["model"], row["dataset"]): row for row in summary.leaderboard}
    assert set(board) == {(m, d.key) for m, d in config.pairings()}
    for pairing, row in board.items():
        assert row["status"] == "ok", (pairing, row.get("error"))
        for metric in ("precision_macro", "recall_macro", "f1_macro"):
            assert 0.0 <= row[f"test_{metric}"] <= 1.0, (pairing, metric)
        # ROC-AUC is recorded too; on a few random test images a class may be absent (NaN).
        auc = row["test_roc_auc"]
        assert math.isnan(auc) or 0.0 <= auc <= 1.0
    predictions = pq.read_table(f"{summary.store.path}/predictions.parquet").to_pandas()
    for (model, dataset), rows in predictions.groupby(["model", "dataset"]):
        rows = rows.sort_values("sample")
        if dataset in WRITTEN_TEST_LABELS:  # an official test split: every image, in order
            assert rows.y_true.tolist() == WRITTEN_TEST_LABELS[dataset], (model, dataset)
        proba = np.stack(rows.proba.to_numpy())
        classes = json.loads(board[(model, dataset)]["classes"])
        assert np.allclose(proba.sum(1), 1, atol=1e-4) and proba.shape[1] == len(classes)
