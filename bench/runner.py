"""`bench run`: checks that need no cluster first, then every pairing's search in one Tuner
(bench.tune.search), datasets loaded when their first pairing starts, parts merged into the
run's Parquet files, the leaderboard printed. Ray is reached only through bench.driver and
bench.tune."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import driver, environment
from bench.config import BenchmarkConfig, ResourcesConfig, to_yaml
from bench.data.loaders import Decoding
from bench.data.splits import fingerprint, split_rows
from bench.errors import BenchError, RunFailed, first_line
from bench.plan import resolve_pairings
from bench.preflight import check_before_start, check_resources, import_torch_first
from bench.progress import open_progress
from bench.redaction import redact
from bench.registry import MODELS, load_replicates
from bench.report.console import format_leaderboard
from bench.results.finalize import merge_parts
from bench.results.schema import SCHEMA_VERSION, to_table
from bench.results.store import RunStore, part_name
from bench.tune.datasets import DatasetPool, ray_tasks
from bench.tune.jobs import PairingJob, TrialPlan
from bench.tune.pairing import (
    REPLICATE_PARTS,
    PairingSearch,
    interrupted_trials,
    stored_trials,
    trial_budget,
)
from bench.tune.scheduling import LOOKAHEAD, Capacity
from bench.tune.search import SearchRun, run_search
from bench.tune.studies import StudyJournal

Print = Callable[[str], None]
SKIPPED_FILE = "skipped_images.json"  # ImageFolder files left out, per dataset


@dataclass
class RunSummary:
    store: RunStore
    leaderboard: list[dict[str, Any]]
    seconds: float


class Interrupted(BenchError):
    """Ctrl-C: finished work is written; the message holds the resume command."""


def run_benchmark(
    config: BenchmarkConfig,
    echo: Print = print,
    address: str | None = None,
    resume: RunStore | None = None,
    source: str | None = None,
    callbacks: Sequence[Any] = (),
    debug: bool = False,
    dashboard: bool = False,
) -> RunSummary:
    """Run (or, given `resume`, continue or extend) a benchmark. `source` is the definition's
    path and flags as typed, for the resume command printed if the run stops early;
    `callbacks` are extra Tune callbacks (bench perf times trials with one). With `echo`
    print on a terminal the search shows a live table, otherwise plain lines through `echo`
    (bench.progress); `debug` shows Ray's and Tune's own start-up notices and warnings;
    `dashboard` starts a local Ray with its dashboard."""
    started = time.perf_counter()
    import_torch_first(config, resuming=resume is not None)
    check_before_start(config, local=not driver.joins_a_cluster(address))
    store, cluster = open_run(config, resume, address, echo, debug, dashboard)
    studies = StudyJournal(store)
    pairings = plan_pairings(config, store, cluster, studies)
    echo_plan(config, pairings, cluster, resumed=resume is not None, echo=echo)
    typed = "<benchmark.yaml>" if source is None else source
    resume_command = redact(" ".join(filter(None, ["bench run", typed, "--resume", store.uri])))
    with failures_resumable(store, config, resume_command):
        run = search_all(config, store, pairings, studies, resume_command, callbacks, echo, debug)
        tables = merge_parts(store, config.evaluation)
        audit_lines = audited(store, config) if config.audit.enabled else []
    if run.data_errors:
        error = next(iter(run.data_errors.values()))
        raise BenchError(
            f"{error}; the other datasets' pairings finished and are saved: fix it, then "
            f"resume with: {resume_command}"
        )
    leaderboard = tables["leaderboard"].to_pylist()
    echo("")
    echo(format_leaderboard(leaderboard))
    for line in audit_lines:
        echo(line)
    echo(f"\nresults: {redact(store.uri)}  ({time.perf_counter() - started:.0f} s)")
    return RunSummary(store, leaderboard, time.perf_counter() - started)


def audited(store: RunStore, config: BenchmarkConfig) -> list[str]:
    """The data audit (bench.audit) of the finished run: its summary lines."""
    from bench.audit.run import audit_run, repeat_zero_loader

    return audit_run(store, config, repeat_zero_loader(config))


@contextlib.contextmanager
def failures_resumable(store: RunStore, config: BenchmarkConfig, resume_command: str):
    """An exception that is not bad input (a bug, a full disk, a failed merge) ends the run in
    one line naming it and the resume command, after what finished is written where it can
    be; the run folder stays resumable (parts are written whole, the journal appended)."""
    try:
        yield
    except BenchError:
        raise
    except Exception as exc:
        with contextlib.suppress(Exception):
            merge_parts(store, config.evaluation)
        raise RunFailed(
            f"the run stopped: {type(exc).__name__}: {first_line(exc)}; finished trials are "
            f"saved. Resume with: {resume_command} (--debug shows the traceback)"
        ) from exc


def open_run(
    config: BenchmarkConfig,
    resume: RunStore | None,
    address: str | None,
    echo: Print,
    debug: bool = False,
    dashboard: bool = False,
) -> tuple[RunStore, dict[str, float]]:
    """The run folder (made before Ray starts: an unwritable output fails first) and the
    cluster's resources, read once for everything planned after. A failure to join or a
    request no node meets leaves no new run folder behind."""
    store = resume or RunStore.create(config.output, config.name)
    try:
        local = driver.connect(address, echo, debug, dashboard)
        warning = check_resources(config, driver.alive_nodes(), local)
    except BenchError:
        if resume is None:
            store.discard()  # nothing was written: leave no empty run folder behind
        raise
    cluster = driver.cluster_resources()
    save_definition(store, config)  # an extended run's, once it is checked
    if resume is None:
        store.write_json(
            "environment.json",
            {**environment.describe(cluster), "schema_version": SCHEMA_VERSION},
        )
    echo(f"bench: {'resuming' if resume else 'run'} {store.run_id} -> {redact(store.uri)}")
    if warning:
        echo(f"  {warning}")
    return store, cluster


def save_definition(store: RunStore, config: BenchmarkConfig) -> None:
    """The run's config.yaml: the resolved definition, credentials in its URIs masked."""
    store.write_text("config.yaml", redact(to_yaml(config)))


def echo_plan(
    config: BenchmarkConfig,
    pairings: list[PairingSearch],
    cluster: Mapping[str, float],
    resumed: bool,
    echo: Print,
) -> None:
    total = len(config.pairings()) * config.evaluation.repeats
    if resumed:
        again = sum(p.previous is not None for p in pairings)
        echo(f"  {total - len(pairings) + again} of {total} pairing repeats already finished")
        if again:
            echo(f"  {again} of them search on (more trials), and refit if their choice changes")
    at_once = sorted(
        {min(p.live_cap, driver.trial_slots(p.job.resources, cluster)) for p in pairings}
    )
    echo(
        f"  {len(pairings)} pairings ({sum(p.budget for p in pairings)} trials to run), "
        f"up to {'/'.join(map(str, at_once)) or 0} trials at once per pairing"
    )


def search_all(
    config: BenchmarkConfig,
    store: RunStore,
    pairings: list[PairingSearch],
    studies: StudyJournal,
    resume_command: str,
    callbacks: Sequence[Any],
    echo: Print,
    debug: bool = False,
) -> SearchRun:
    """Every pairing's search and refits in one Tuner, shown on the console while it runs; on
    Ctrl-C what finished is merged and the resume command raised."""
    progress = open_progress(echo, {p.name: trial_cost(p.job) for p in pairings})
    datasets = DatasetPool(
        lambda key: load_dataset_for_run(
            config, store, key, progress.echo, Decoding(ray_tasks, progress.echo)
        ),
        [p.job.dataset for p in pairings],
    )
    run = SearchRun(pairings, datasets, store, Capacity(driver.alive_nodes), progress)
    progress.start()
    try:
        datasets.prepare()
        run_search(
            run,
            TrialPlan(store.uri, {p.name: p.job for p in pairings}, dict(datasets.refs)),
            config.search,
            experiment_name(store),
            callbacks=callbacks,
            debug=debug,
        )
    except KeyboardInterrupt:
        merge_parts(store, config.evaluation)  # what finished is written, in the final shape
        raise Interrupted(
            f"interrupted; finished trials are saved. Resume with: {resume_command}"
        ) from None
    finally:
        progress.close()  # its last frame stays above the leaderboard (or the error)
        datasets.close()
        studies.close()
    return run


def plan_pairings(
    config: BenchmarkConfig,
    store: RunStore,
    cluster: Mapping[str, float],
    studies: StudyJournal | None = None,
) -> list[PairingSearch]:
    """The pairings' repeats still to run, longest first, each with its ended trials and the
    checkpoints of its cut-off ones. A resumed run skips finished repeats, except those an
    extended run searches on (more trials than it ran) and the repeats that refit their
    choice. With evaluation.search once, repeats past 0 only refit repeat 0's choice: they
    follow it."""
    finished = finished_repeats(store)
    jobs = [PairingJob(plan) for plan in resolve_pairings(config, store.run_id)]
    prior = {job.part_name: stored_trials(store, job.part_name) for job in jobs}
    searching_on = {
        (job.plan.model, job.dataset)
        for job in jobs
        if job.part_name in finished and len(prior[job.part_name]) < trial_budget(job.plan)
    }
    jobs = [
        job
        for job in jobs
        if job.part_name not in finished or (job.plan.model, job.dataset) in searching_on
    ]
    numbers = {job.part_name: {r["trial"] for r in prior[job.part_name]} for job in jobs}
    restarts = interrupted_trials(store, numbers)
    datasets = [d.key for d in config.datasets]
    jobs.sort(key=lambda job: run_order(job, datasets.index(job.dataset)))
    searches = [
        PairingSearch(
            dataclasses.replace(job, restarts=restarts.get(job.part_name, {})),
            live_cap(config.search.max_concurrent_trials, job.resources, cluster),
            prior[job.part_name],
            studies,
            previous=finished.get(job.part_name),
        )
        for job in jobs
    ]
    if config.evaluation.search == "once":
        _follow_repeat_zero(searches, store, finished)
    return searches


def finished_repeats(store: RunStore) -> dict[str, dict[str, Any]]:
    """The replicate rows an earlier session of the run wrote, by part name."""
    return {
        path.rsplit("/", 1)[-1].removesuffix(".parquet"): store.read_table(path).to_pylist()[0]
        for path in store.list(REPLICATE_PARTS)
    }


def _follow_repeat_zero(
    searches: list[PairingSearch], store: RunStore, finished: Mapping[str, dict[str, Any]]
) -> None:
    """Each repeat past 0 follows its pairing's repeat-0 search; when that finished in an
    interrupted run (`finished`: the stored replicate rows by part name), its stored choice is
    refit now (or its failure handed on)."""
    leaders = {(p.job.plan.model, p.job.dataset): p for p in searches if p.job.plan.repeat == 0}
    for follower in (p for p in searches if p.job.plan.repeat > 0):
        leader = leaders.get((follower.job.plan.model, follower.job.dataset))
        if leader is not None:
            leader.followers.append(follower)
            continue
        plan = dataclasses.replace(follower.job.plan, repeat=0)
        row = finished[part_name(plan.pairing)]
        if row["status"] == "ok":
            follower.follow(row)
        else:
            follower.fail(store, f"repeat 0: {row['error']}")


def live_cap(
    max_concurrent_trials: int, resources: ResourcesConfig, cluster: Mapping[str, float]
) -> int:
    """Trials of one pairing handed out at once: as configured; or, by default, as many as
    the cluster runs, plus a short queue so the next one reuses a finishing trial's actor."""
    if max_concurrent_trials:
        return max_concurrent_trials
    slots = driver.trial_slots(resources, cluster)
    return slots + max(1, round(slots * (LOOKAHEAD - 1)))


def experiment_name(store: RunStore) -> str:
    """Tune's experiment folder under the run's tune/: a resumed run adds one beside the
    interrupted one's (whose checkpoints it continues from)."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(store.file("tune"), allow_not_found=True)
    earlier = [i for i in store.fs.get_file_info(selector) if i.type == pafs.FileType.Directory]
    return f"search-{len(earlier)}" if earlier else "search"


def load_dataset_for_run(
    config: BenchmarkConfig,
    store: RunStore,
    key: str,
    echo: Print,
    decoding: Decoding | None = None,
) -> list[Any]:
    """One dataset read from the image cache (decoded into it first, on first use), each
    repeat's splits saved with the run (a resumed run checks that it derived the very same
    ones), its fingerprint attached and its skipped files listed."""
    dataset = next(d for d in config.datasets if d.key == key)
    cv = config.cv
    decoding = decoding or Decoding(echo=echo)
    repeats = load_replicates(
        dataset, cv.folds, cv.test_fraction, cv.seed, config.evaluation.repeats, decoding
    )
    first = repeats[0]
    echo(
        f"  dataset {key}: {len(first.train_y)} train / {len(first.test_y)} test, "
        f"{first.num_classes} classes, {first.channels}x{first.image_size}x{first.image_size}, "
        f"{cv.folds} folds x {len(repeats)} repeats"
    )
    rows = [row for data in repeats for row in split_rows(store.run_id, data)]
    part = f"parts/splits/{part_name(key)}.parquet"
    if store.exists(part):
        if store.read_table(part).to_pylist() != to_table("splits", rows).to_pylist():
            raise BenchError(
                f"dataset {key}: the data's splits differ from the interrupted run's "
                f"(dataset files changed?); start a new run instead of resuming"
            )
    else:
        store.write_table("splits", rows, part)
    stamp = fingerprint(rows, repeats, cv.test_fraction)
    for data in repeats:
        data.fingerprint = stamp
    if first.ignored:
        echo(f"  dataset {key}: {left_out(first.ignored)}")
    if first.skipped:
        echo(f"  dataset {key}: skipped {len(first.skipped)} unreadable file(s)")
        listed = store.read_json(SKIPPED_FILE) if store.exists(SKIPPED_FILE) else {}
        store.write_json(SKIPPED_FILE, {**listed, key: first.skipped})
    return repeats


def left_out(ignored: list[str]) -> str:
    """One line on the files of a tree that are not images: how many, and a few names."""
    from pathlib import PurePath

    names = list(dict.fromkeys(PurePath(p).name for p in ignored))
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"left out {len(ignored)} file(s) that are not images ({shown})"


# Rough cost of an epoch by model family, relative to an MLP's (a small CNN's trials on
# digits take about 2.5x an MLP's; a torchvision backbone, ~100x).
FAMILY_COST = {"mlp": 1.0, "cnn": 3.0}
TORCHVISION_COST = 100.0


def expected_cost(job: PairingJob) -> float:
    """A rough measure of a pairing's work: trials x epochs x its family's epoch cost."""
    return trial_cost(job) * job.plan.trials


def trial_cost(job: PairingJob) -> float:
    """A rough measure of one trial's work: epochs x its family's epoch cost."""
    return FAMILY_COST.get(MODELS.get(job.plan.model).family, TORCHVISION_COST) * job.plan.epochs


def run_order(job: PairingJob, dataset_index: int) -> tuple[int, int, float]:
    """Pairings run longest first, so the longest search (and its refit) starts at once and
    the short ones fill the gaps instead of the long one running alone at the end. Costs
    within a factor of 10 of each other run dataset by dataset (so few datasets are loaded
    at once), the longest first within a dataset."""
    cost = expected_cost(job)
    return (-math.floor(math.log10(cost)), dataset_index, -cost)
