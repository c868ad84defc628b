"""The audit of one run, from its folder: reads the tables the run wrote and its datasets' images
(from the image cache), writes label_issues.parquet, duplicates.parquet and
audit_ranking.parquet beside them."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.audit.duplicates import Pair, find_duplicates, signatures
from bench.audit.effect import SUBSETS, held_out_keys, item_key, rank_changes, ranking_rows
from bench.audit.labels import LabelIssues, find_label_issues
from bench.data.images import ImageData
from bench.data.rows import CachedImages, ImageRows
from bench.errors import BenchError
from bench.results.store import RunStore
from bench.seeds import BOOTSTRAP, derive_seed

AUDIT_TABLES = ("label_issues", "duplicates", "audit_ranking")
LoadRepeatZero = Callable[[Any], ImageData]  # a DatasetConfig -> its repeat 0


@dataclass
class DatasetAudit:
    """What the audit found in one dataset, in repeat 0's coordinates: images 0..pool-1 are
    the CV pool's rows, pool.. the test split's."""

    name: str
    pool: int
    keys: np.ndarray  # item_key of each image
    labels: np.ndarray
    issues: LabelIssues | None
    pairs: list[Pair] = field(default_factory=list)

    def role(self, image: int) -> tuple[str, int]:
        return ("train", image) if image < self.pool else ("test", image - self.pool)


def audit_saved_run(location: str) -> list[str]:
    """`bench audit RUN`: audit a finished run from its folder (its saved definition, its
    tables, its datasets read through the image cache)."""
    from bench.config import validate_benchmark
    from bench.resuming import run_folder, saved_definition

    store = run_folder(location)
    if not store.exists("leaderboard.parquet"):
        raise BenchError(
            f"{location}: the run has no leaderboard.parquet yet; finish it first "
            f"(bench run --resume {location})"
        )
    config = validate_benchmark(saved_definition(store), f"{location}/config.yaml")
    return audit_run(store, config, repeat_zero_loader(config))


def repeat_zero_loader(config: Any) -> LoadRepeatZero:
    """A dataset's repeat 0, as the run split it (read from the image cache, decoded into it
    first if the cache lost it)."""
    from bench.registry.datasets import load_dataset

    cv = config.cv
    return lambda dataset: load_dataset(dataset, cv.folds, cv.test_fraction, cv.seed)


def audit_run(store: RunStore, config: Any, load: LoadRepeatZero) -> list[str]:
    """Audit every dataset of the run that has test predictions; write the audit's tables;
    return its summary lines."""
    started = time.perf_counter()
    tables = {name: _read(store, name) for name in ("oof", "predictions", "splits", "leaderboard")}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in AUDIT_TABLES}
    left_out: dict[str, dict[str, set[int]]] = {subset: {} for subset in SUBSETS}
    lines = []
    for dataset in config.datasets:
        if dataset.key not in set(tables["predictions"]["dataset"]):
            continue  # failed to load, or no pairing of it finished
        data = load(dataset)
        found = audit_dataset(data, tables, config.audit.duplicate_distance)
        lines.append(_summary(found))
        pictures = _Pictures(data, found.pool, config.audit.thumbnails)
        rows["label_issues"] += _issue_rows(store, config, found, data, pictures)
        rows["duplicates"] += _pair_rows(store, config, found, data, pictures)
        left_out["without_duplicates"][data.name] = _duplicated_test_images(found)
        left_out["without_label_issues"][data.name] = _flagged_keys(found)
    evaluation = config.evaluation
    rows["audit_ranking"] = ranking_rows(
        tables["leaderboard"],
        tables["predictions"],
        held_out_keys(tables["splits"]),
        left_out,
        derive_seed(evaluation.training_seed, BOOTSTRAP),
        evaluation.bootstrap,
    )
    for name in AUDIT_TABLES:
        store.write_table(name, rows[name])
    lines += rank_changes(rows["audit_ranking"]) or ["ranks unchanged without the flagged images"]
    lines.append(f"audit written in {time.perf_counter() - started:.1f} s")
    return lines


def audit_dataset(data: ImageData, tables: dict[str, pd.DataFrame], distance: float):
    """Label issues from every model's out-of-sample probabilities, and duplicate pairs that
    involve a test image of any repeat, in one dataset's repeat 0."""
    pool, test = len(data.train_y), len(data.test_y)
    splits = tables["splits"]
    splits = splits[(splits["dataset"] == data.name) & (splits["repeat"] == 0)]
    source = {
        (role, int(s)): item_key(i, s)
        for role, s, i in zip(splits["role"], splits["sample"], splits["source_index"], strict=True)
    }
    keys = np.array(
        [source[("train", i)] for i in range(pool)] + [source[("test", j)] for j in range(test)]
    )
    labels = np.concatenate([data.train_y, data.test_y]).astype(np.int64)
    probas = _out_of_sample(data.name, tables, pool, test)
    issues = find_label_issues(labels, probas) if probas else None
    found = DatasetAudit(data.name, pool, keys, labels, issues)
    every = tables["splits"]
    tested = every[(every["dataset"] == data.name) & (every["role"] == "test")]
    ever_tested = {
        item_key(i, s) for i, s in zip(tested["source_index"], tested["sample"], strict=True)
    }
    queries = [i for i, k in enumerate(keys.tolist()) if i >= pool or k in ever_tested]
    found.pairs = find_duplicates(signatures([data.train_x, data.test_x]), queries, distance)
    return found


def _out_of_sample(name: str, tables, pool: int, test: int) -> list[np.ndarray]:
    """Per model with a whole set: its CV pool rows from the chosen trial's out-of-fold
    probabilities, its test rows from the kept (repeat 0) model's predictions."""
    oof = tables["oof"]
    oof = oof[(oof["dataset"] == name) & (oof["repeat"] == 0)]
    predictions = tables["predictions"]
    predictions = predictions[(predictions["dataset"] == name) & (predictions["repeat"] == 0)]
    out = []
    for model in sorted(set(oof["model"]) & set(predictions["model"])):
        mine = pd.concat(
            [
                oof[oof["model"] == model][["sample", "proba"]],
                predictions[predictions["model"] == model][["sample", "proba"]].assign(
                    sample=lambda f: f["sample"] + pool
                ),
            ]
        ).sort_values("sample")
        if len(mine) == pool + test and (mine["sample"].to_numpy() == np.arange(pool + test)).all():
            out.append(np.stack(mine["proba"].to_numpy()).astype(np.float64))
    return out


def _read(store: RunStore, name: str) -> pd.DataFrame:
    from bench.results.schema import TABLES

    if not store.exists(f"{name}.parquet"):  # a run from before the audit has no oof
        return TABLES[name].empty_table().to_pandas()
    return store.read_table(f"{name}.parquet").to_pandas()


def _summary(found: DatasetAudit) -> str:
    images = len(found.labels)
    if found.issues is None:
        issues = "no label check (no model has out-of-fold and test predictions)"
    else:
        flagged = len(found.issues.flagged)
        issues = f"{_count(flagged, 'likely label error')} ({flagged / max(images, 1):.1%})"
    exact = sum(p.kind == "exact" for p in found.pairs)
    crossing = sum(_pair_roles(found, p)[0] == "test-train" for p in found.pairs)
    pairs = _count(len(found.pairs), "duplicate pair")
    if found.pairs:
        pairs += f" ({exact} exact; {crossing} a test image with a copy in the CV pool)"
    return f"audit {found.name}: {issues} among {images:,} images; {pairs}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _pair_roles(found: DatasetAudit, pair: Pair) -> tuple[str, int, int]:
    """("test-train" / "test-test" / "train-train" in repeat 0, first image, second), the test
    image first."""
    a, b = pair.a, pair.b
    if a < found.pool <= b:
        a, b = b, a
    names = [found.role(i)[0] for i in (a, b)]
    return "-".join(names), a, b


def _duplicated_test_images(found: DatasetAudit) -> set[int]:
    return {int(found.keys[i]) for p in found.pairs for i in (p.a, p.b)}


def _flagged_keys(found: DatasetAudit) -> set[int]:
    return set() if found.issues is None else {int(found.keys[i]) for i in found.issues.flagged}


class _Pictures:
    """Image details for table rows: file names (trees) and PNG thumbnails for the first rows."""

    def __init__(self, data: ImageData, pool: int, count: int) -> None:
        self.data, self.pool, self.count = data, pool, count
        self.files = [image_files(data.train_x), image_files(data.test_x)]

    def image(self, image: int) -> np.ndarray:
        if image < self.pool:
            return np.asarray(self.data.train_x[image])
        return np.asarray(self.data.test_x[image - self.pool])

    def file(self, image: int) -> str:
        part, row = (0, image) if image < self.pool else (1, image - self.pool)
        return self.files[part][row] if self.files[part] else ""

    def thumbnail(self, image: int, position: int) -> bytes:
        return png_thumbnail(self.image(image)) if position < self.count else b""


def image_files(images: Any) -> list[str] | None:
    """Each row's file, relative to the dataset's root, where the image cache knows it."""
    if not isinstance(images, ImageRows) or not isinstance(images.base, CachedImages):
        return None
    meta = Path(images.base.folder) / "meta.json"
    if not meta.is_file():
        return None
    files = json.loads(meta.read_text()).get("files")
    return [files[int(i)] for i in images.index] if files else None


def png_thumbnail(image: np.ndarray, side: int = 64) -> bytes:
    """A uint8 CHW image as a PNG of `side` px or less (small images enlarged, pixels kept
    sharp)."""
    from PIL import Image

    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    scale = side / max(picture.size)
    resample = Image.NEAREST if scale > 1 else Image.BILINEAR
    picture = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), resample
    )
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _ids(store: RunStore, config: Any, found: DatasetAudit) -> dict[str, str]:
    return {"run_id": store.run_id, "benchmark": config.name, "dataset": found.name}


def _image_fields(found, pictures: _Pictures, image: int, position: int, prefix: str = ""):
    role, sample = found.role(image)
    return {
        f"{prefix}role": role,
        f"{prefix}sample": sample,
        f"{prefix}source_index": int(found.keys[image]) if found.keys[image] >= 0 else -1,
        f"{prefix}file": pictures.file(image),
        f"{prefix}thumbnail": pictures.thumbnail(image, position),
    }


def _issue_rows(store, config, found: DatasetAudit, data: ImageData, pictures: _Pictures):
    from bench.results.schema import make_row

    issues = found.issues
    if issues is None:
        return []
    return [
        make_row(
            "label_issues",
            **_ids(store, config, found),
            rank=position + 1,
            **_image_fields(found, pictures, int(image), position),
            given_label=int(found.labels[image]),
            suggested_label=int(issues.suggested[image]),
            given_class=data.classes[found.labels[image]],
            suggested_class=data.classes[issues.suggested[image]],
            given_probability=float(issues.given_probability[image]),
            suggested_probability=float(issues.suggested_probability[image]),
            models_flagging=int(issues.models_flagging[image]),
            models=issues.models,
        )
        for position, image in enumerate(issues.flagged)
    ]


def _pair_rows(store, config, found: DatasetAudit, data: ImageData, pictures: _Pictures):
    from bench.results.schema import make_row

    rows = []
    for position, pair in enumerate(found.pairs):
        roles, a, b = _pair_roles(found, pair)
        rows.append(
            make_row(
                "duplicates",
                **_ids(store, config, found),
                kind=pair.kind,
                pair=roles,
                distance=pair.distance,
                **_image_fields(found, pictures, a, position, "a_"),
                **_image_fields(found, pictures, b, position, "b_"),
            )
        )
    return rows
