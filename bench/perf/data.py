"""Real-size data: photo-like JPEG trees of N images (256 px, 10 classes) benchmarked at 224 px,
as a user's ImageFolder would be. For each N: one `bench run` (one mlp trial, 2 folds, 1 epoch,
1 repeat) in a child process, with the machine's used memory (MemTotal - MemAvailable: every
process, Ray's object store in shared memory included; the page cache excluded, as the kernel
gives it back) sampled 10 times a second against its level before the start; the decode rate
that run printed; the time a second run takes to get the same tree ready from the warm cache;
and, on the first tree, training batches per second through bench's loader against
torchvision's ImageFolder + DataLoader with the same number of worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from bench.perf.figures import Figure

SECTION = "8. real-size data (JPEG trees at 224 px)"
CLASSES = 10
SIDE = 256
IMAGE_SIZE = 224
BATCH = 64


def write_photo_tree(root: Path, images: int, side: int = SIDE, seed: int = 0) -> Path:
    """root/class<k>/<i>.jpg: smooth random colour fields with grain (JPEGs of ~30 KB at 256
    px, about as compressible as photos); written by a process per core."""
    jobs = [(root, k, range(k, images, CLASSES), side, seed) for k in range(CLASSES)]
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_class, jobs)
    return root


def _write_class(job: tuple[Path, int, range, int, int]) -> None:
    from PIL import Image

    root, label, numbers, side, seed = job
    folder = Path(root) / f"class{label}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, label])
    for i in numbers:
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
        grain = rng.normal(0, 6, (side, side, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float64) + grain + 4 * label, 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)


class UsedMemory:
    """Peaks sampled in a thread: the machine's used memory above its level at start, and
    the memory of one process tree (`root`, once set: the run, Ray's daemons and workers),
    which other work on the machine does not disturb."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.baseline = interval, used_bytes()
        self.peak, self.tree_peak, self.root = self.baseline, 0, 0
        self.tree_at_peak: dict[str, int] = {}  # the biggest processes at the tree's peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> UsedMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, used_bytes())
            if self.root:
                processes = tree_processes(self.root)
                if sum(processes.values()) > self.tree_peak:
                    self.tree_peak = sum(processes.values())
                    self.tree_at_peak = {_process_name(p): b for p, b in processes.items()}

    @property
    def above(self) -> int:
        return self.peak - self.baseline


def tree_processes(root: int) -> dict[int, int]:
    """Private and shared-memory pages (proportional set size, anonymous + shmem: heaps,
    tensors, Ray's object store) of `root` and each of its descendants, by pid; the page
    cache's file pages (the image cache) are not counted, as the kernel reclaims them."""
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            total = 0
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                        total += int(line.split()[1]) * 1024
            found[pid] = total
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo += [int(child) for child in fh.read().split()]
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return found


def _process_name(pid: int) -> str:
    """ "pid name": Ray names its workers by what they run (ray::ImplicitFunc.train); others
    go by their command's first words."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            words = fh.read().split(b"\0")
    except OSError:
        return f"{pid} (ended)"
    name = words[0].decode(errors="replace")
    if not name.startswith("ray::"):
        name = " ".join(Path(w.decode(errors="replace")).name for w in words[:3] if w)
    return f"{pid} {name[:60]}"


def used_bytes() -> int:
    info = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            name, value = line.split(":", 1)
            info[name] = int(value.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


def probe_run(tree: Path, cache: Path, output: Path) -> tuple[UsedMemory, float, str]:
    """One `bench run` on `tree` in a child process: (its memory peaks, wall seconds, its
    output)."""
    definition = output / "probe.yaml"
    output.mkdir(parents=True, exist_ok=True)
    dataset = f"{{name: imagefolder, path: '{tree}', image_size: {IMAGE_SIZE}, channels: 3}}"
    definition.write_text(
        f"name: probe\nmodels: [mlp]\ndatasets: [{dataset}]\n"
        "search: {trials: 1, seed: 0}\ncv: {folds: 2, seed: 0}\nevaluation: {repeats: 1}\n"
        f"budget: {{epochs: 1, batch_size: {BATCH}}}\noutput: '{output}'\n"
    )
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache), "TTY_INTERACTIVE": "0"}
    command = [sys.executable, "-m", "bench.cli", "run", str(definition)]
    started = time.perf_counter()
    with UsedMemory() as memory:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        memory.root = child.pid
        output, _ = child.communicate()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"probe run failed ({child.returncode}): {output[-2000:]}")
    return memory, seconds, output


def decode_rate(output: str) -> tuple[float, float]:
    """(seconds, images/s) from a run's 'decoded N images in S s (R/s...' line."""
    found = re.search(r"decoded ([\d,]+) images in ([\d.]+) s", output)
    if not found:
        return 0.0, 0.0
    count, seconds = int(found[1].replace(",", "")), float(found[2])
    return seconds, count / max(seconds, 1e-9)


def warm_seconds(tree: Path, cache: Path) -> float:
    """Seconds to get the tree ready from a warm cache: list and stat its files, read the
    entry, split it (what a second run does instead of decoding)."""
    from bench.config import DatasetConfig
    from bench.registry import load_replicates

    os.environ["BENCH_CACHE_DIR"] = str(cache)
    options = DatasetConfig(name="imagefolder", path=str(tree), image_size=IMAGE_SIZE, channels=3)
    load_replicates(options, 2, 0.2, 0, 1)  # imports, and the tree's listing, as a run has them
    started = time.perf_counter()
    load_replicates(options, 2, 0.2, 0, 1)
    return time.perf_counter() - started


def loader_rates(tree: Path, cache: Path, workers: int, batches: int) -> tuple[float, float]:
    """Training batches per second as images/s: (bench's loader over the cache, torchvision's
    ImageFolder + DataLoader), both shuffled, `workers` processes each, normalized float
    batches at 224 px, `batches` batches each."""
    import torch
    from torchvision import datasets, transforms

    from bench.config import DatasetConfig
    from bench.registry import load_replicates
    from bench.train.inputs import IndexedImages, InputAdapter, make_loader

    os.environ["BENCH_CACHE_DIR"] = str(cache)
    options = DatasetConfig(name="imagefolder", path=str(tree), image_size=IMAGE_SIZE, channels=3)
    data = load_replicates(options, 2, 0.2, 0, 1)[0]
    adapt = InputAdapter(3, IMAGE_SIZE, data.mean, data.std)
    ours = IndexedImages(data.train_x, data.train_y, np.arange(len(data.train_y)))
    loader = make_loader(ours, BATCH, True, 0, workers)
    bench_rate = _rate(loader, batches, lambda images: adapt(images))
    normalize = transforms.Normalize(data.mean, data.std)
    plain = datasets.ImageFolder(
        str(tree),
        transform=transforms.Compose(
            [transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)), transforms.ToTensor(), normalize]
        ),
    )
    plain_loader = torch.utils.data.DataLoader(
        plain, batch_size=BATCH, shuffle=True, num_workers=workers
    )
    return bench_rate, _rate(plain_loader, batches, lambda images: images)


def _rate(loader, batches: int, finish) -> float:
    seen, started = 0, None
    for i, (images, _labels) in enumerate(loader):
        if i == 1:  # the first batch starts the workers; time the steady state
            seen, started = 0, time.perf_counter()
        finish(images)
        seen += len(images)
        if i >= batches:
            break
    return seen / (time.perf_counter() - started)


# A tree this small costs what any run at 224 px costs (Ray, the driver, a trial actor, the
# model and its optimizer state); what a larger tree adds above it is the data's share.
FIXED_IMAGES = 100


def measure(sizes: list[int], workdir: str, echo, loader_batches: int = 60) -> list[Figure]:
    workers = min(4, os.cpu_count() or 1)
    fixed, _, _ = _probe(FIXED_IMAGES, workdir, echo)
    figures = [
        Figure(SECTION, f"{FIXED_IMAGES} images: peak memory", fixed.above / 1e9, "GB", FIXED),
        Figure(SECTION, f"{FIXED_IMAGES} images: run's processes", fixed.tree_peak / 1e9, "GB"),
    ]
    for n in sizes:
        peak, tree, cache = _probe(n, workdir, echo, figures)
        share = (peak.tree_peak - fixed.tree_peak) / 1e9
        figures.append(Figure(SECTION, f"{n:,} images: data's share", share, "GB", SHARE))
        if n == sizes[0]:
            figures += _loader_figures(tree, cache, n, workers, loader_batches)
    if len(sizes) > 1:
        figures.append(_growth(figures, sizes[0], sizes[-1]))
    return figures


FIXED = "used, above the start: Ray, driver, trial actor, model"
SHARE = f"run's processes minus the {FIXED_IMAGES}-image run's"
TREE = "peak PSS (anon + shmem) of the run's process tree"


def _probe(n: int, workdir: str, echo, figures: list[Figure] | None = None):
    """Write an n-image tree, run the probe on it with a cold cache, then time a warm start;
    (memory peaks, tree, cache), the figures added to `figures`."""
    tree, cache = Path(workdir, f"photos-{n}"), Path(workdir, f"cache-{n}")
    echo(f"  writing {n:,} {SIDE}x{SIDE} JPEGs ...")
    write_photo_tree(tree, n)
    echo(f"  bench run on {n:,} images at {IMAGE_SIZE} px (cold cache) ...")
    peak, seconds, output = probe_run(tree, cache, Path(workdir, f"out-{n}"))
    echo(
        f"    peak memory {peak.above / 1e9:.2f} GB above the start (the run's processes "
        f"{peak.tree_peak / 1e9:.2f} GB), {seconds:.0f} s"
    )
    biggest = sorted(peak.tree_at_peak.items(), key=lambda item: -item[1])[:4]
    echo("    at the peak: " + ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in biggest))
    if figures is not None:
        decode_s, rate = decode_rate(output)
        warm = warm_seconds(tree, cache)
        label = f"{n:,} images"
        figures += [
            Figure(SECTION, f"{label}: peak memory", peak.above / 1e9, "GB", "used, above start"),
            Figure(SECTION, f"{label}: run's processes", peak.tree_peak / 1e9, "GB", TREE),
            Figure(SECTION, f"{label}: bench run", seconds, "s", "1 mlp trial, 2 folds"),
            Figure(SECTION, f"{label}: decode", rate, "img/s", f"{decode_s:.1f} s, Ray tasks"),
            Figure(SECTION, f"{label}: warm cache", warm, "s", f"{warm / decode_s:.1%} of decode"),
        ]
    return peak, tree, cache


def _loader_figures(tree: Path, cache: Path, n: int, workers: int, batches: int) -> list[Figure]:
    ours, plain = loader_rates(tree, cache, workers, batches)
    note, label = f"num_workers={workers}, batch {BATCH}", f"{n:,} images"
    return [
        Figure(SECTION, f"{label}: bench loader", ours, "img/s", note),
        Figure(SECTION, f"{label}: ImageFolder+DataLoader", plain, "img/s", note),
        Figure(SECTION, f"{label}: loader ratio", ours / plain, "x", "target >= 1.0"),
    ]


def _growth(figures: list[Figure], first: int, last: int) -> Figure:
    """How the run's process tree's peak grows from the first tree to the last (flat: about
    1). The tree, not the machine's used memory: that one moves by half a gigabyte between
    runs of the same size with what the kernel does with the page cache (no process holding
    more), so it says less about bench than the tree does."""
    peak = {f.name: f.value for f in figures}
    tree = [peak[f"{n:,} images: run's processes"] for n in (first, last)]
    ratio = tree[1] / tree[0]
    note = f"{last:,} vs {first:,} images; target <= 1.3"
    return Figure(SECTION, "peak memory growth", ratio, "x", note)


if __name__ == "__main__":  # python -m bench.perf.data 6000 24000 [--workdir DIR]
    import argparse
    import tempfile

    from bench.perf.figures import format_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    found = measure(args.sizes, args.workdir or tempfile.mkdtemp(prefix="bench-data-"), print)
    print(format_table(found))
