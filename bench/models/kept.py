"""Kept models: each pairing's repeat-0 refit saved in the run folder with what is needed to
use it, and loaded back as a ready module with its preprocessing.

`models/<model>@<dataset>/` holds `weights.pt` (a plain state dict: it loads with
`torch.load(weights_only=True)`, which executes no code) and `model.json` (the model's name
and hyperparameters, the class names, the input the network takes and the InputAdapter that
brings stored images there: side, channels, normalization, resize and crop)."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, first_line
from bench.registry.models import create_model
from bench.results.schema import dumps
from bench.results.store import MODELS_FOLDER, RunStore, kept_folder
from bench.train.inputs import InputAdapter

WEIGHTS, META = "weights.pt", "model.json"


def save_kept_model(
    store: RunStore,
    model: str,
    dataset: str,
    module: torch.nn.Module,
    hparams: dict[str, Any],
    adapter: InputAdapter,
    data: Any,
    repeat: int,
) -> str:
    """Write the weights and the description of one refit model; its run-relative folder."""
    folder = kept_folder(model, dataset)
    hparams = json.loads(dumps(hparams))  # searched values as plain JSON numbers and strings
    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    store.write_bytes(f"{folder}/{WEIGHTS}", buffer.getvalue())
    meta = {
        "model": model,
        "dataset": dataset,
        "repeat": repeat,
        "hparams": hparams,
        "classes": list(data.classes),
        "data_channels": data.channels,  # the stored images': images are decoded to these
        "data_size": data.image_size,
        "adapter": dataclasses.asdict(adapter),
        "fingerprint": data.fingerprint,
    }
    store.write_json(f"{folder}/{META}", meta)
    return folder


@dataclass
class KeptModel:
    """A refit model ready to predict: the module (eval mode, CPU), its input adapter and
    what it was trained on."""

    module: torch.nn.Module
    adapter: InputAdapter
    classes: list[str]
    meta: dict[str, Any]

    @property
    def image_size(self) -> int:
        """Side images are decoded to before the adapter (the dataset's image_size)."""
        return int(self.meta["data_size"])

    @property
    def channels(self) -> int:
        return int(self.meta["data_channels"])

    def decode(self, paths: list[Path]) -> np.ndarray:
        """Image files as uint8 NCHW at the dataset's side and channels (ImageFolder's rules);
        a file that does not decode is named in the error."""
        from bench.data.decode import decode_image
        from bench.data.images import to_uint8_nchw

        mode = "L" if self.channels == 1 else "RGB"
        pixels = []
        for path in paths:
            image, why = decode_image(Path(path), self.image_size, mode)
            if image is None:
                raise BenchError(f"{path}: {why}; pass image files (png, jpg, ...)")
            pixels.append(image)
        return to_uint8_nchw(np.stack(pixels))

    def predict_proba(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Class probabilities of uint8 NCHW images at the dataset's side and channels, as
        the run computed its test predictions."""
        from bench.train.loop import predict_proba

        index = np.arange(len(images))
        cpu = torch.device("cpu")
        return predict_proba(self.module, images, index, self.adapter, cpu, batch_size)


def load_kept_model(run: str | Path, model: str, dataset: str) -> KeptModel:
    """The kept model of `model` on `dataset` (a dataset key: `digits`,
    `imagefolder@photos`) from a run folder or URI."""
    store = RunStore(str(run))
    folder = kept_folder(model, dataset)
    if not store.exists(f"{folder}/{META}"):
        kept = sorted(Path(p).parent.name for p in store.list(MODELS_FOLDER) if p.endswith(META))
        raise BenchError(
            f"{run}: no kept model for {model}@{dataset} (kept: {', '.join(kept) or 'none'}); "
            f"pass a model and dataset of that run"
        )
    try:
        meta = store.read_json(f"{folder}/{META}")
        adapter = InputAdapter(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in meta["adapter"].items()}
        )
        built = create_model(
            meta["model"], len(meta["classes"]), adapter.channels, adapter.size, **meta["hparams"]
        )
        with store.fs.open_input_stream(store.file(folder, WEIGHTS)) as stream:
            state = torch.load(io.BytesIO(stream.read()), map_location="cpu", weights_only=True)
        built.module.load_state_dict(state)
    except BenchError:
        raise
    except Exception as exc:  # a file cut short, edited or of another bench version
        raise BenchError(
            f"{run}: the kept model {folder} cannot be loaded ({type(exc).__name__}: "
            f"{first_line(exc)}); its files are damaged: restore them, or run the pairing again"
        ) from None
    built.module.eval()
    return KeptModel(built.module, adapter, list(meta["classes"]), meta)
