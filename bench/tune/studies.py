"""Every pairing's Optuna study, kept in the run folder: one journal file (`studies.log`) in
an Optuna `JournalStorage`, a study per pairing repeat named by it (`mlp@digits.r0`), so
`optuna-dashboard <run>/studies.log` and `optuna.load_study` open them, and a resumed or
extended run continues each study instead of rebuilding it.

A study's trial numbers are the run's trial numbers (trials.parquet's `trial`): both count
every trial asked, in order."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import optuna
import pyarrow.fs as pafs
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench.config import SearchSpace
from bench.metrics import Objective
from bench.results.store import RunStore
from bench.tune.space import distributions

STUDIES_FILE = "studies.log"
UPLOAD_EVERY_SECONDS = 30.0  # a remote run folder gets the journal this often, and at the end
States = optuna.trial.TrialState
STATE_OF_STATUS = {"ok": States.COMPLETE, "pruned": States.PRUNED, "failed": States.FAIL}


class StudyJournal:
    """The run's Optuna storage. A local run folder holds the journal itself; a remote one
    (`s3://...`) gets a copy of a local scratch journal now and then (JournalStorage appends
    to a local file), which a resumed run downloads again."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.remote = not isinstance(store.fs, pafs.LocalFileSystem)
        if self.remote:
            self._scratch = tempfile.TemporaryDirectory(prefix="bench-studies-")
            self.path = os.path.join(self._scratch.name, STUDIES_FILE)
            if store.exists(STUDIES_FILE):
                with store.fs.open_input_stream(store.file(STUDIES_FILE)) as stream:
                    with open(self.path, "wb") as out:
                        out.write(stream.read())
        else:
            self.path = store.file(STUDIES_FILE)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.storage = JournalStorage(JournalFileBackend(self.path))
        self.uploaded = time.monotonic()

    def sync(self, force: bool = False) -> None:
        """Upload the scratch journal of a remote run folder (every so often, or now)."""
        due = force or time.monotonic() - self.uploaded > UPLOAD_EVERY_SECONDS
        if not self.remote or not due:
            return
        with open(self.path, "rb") as f:
            self.store.write_bytes(STUDIES_FILE, f.read())
        self.uploaded = time.monotonic()

    def close(self) -> None:
        self.sync(force=True)


def open_study(
    storage: optuna.storages.BaseStorage | None,
    name: str,
    space: SearchSpace,
    objective: Objective,
    sampler: optuna.samplers.BaseSampler,
    rows: Sequence[dict[str, Any]],
) -> optuna.Study:
    """The study `name` in `storage` (in memory when None), holding every trial of `rows` (the
    pairing's trial rows so far) under its own number.

    A study the journal already holds is continued as it is: the trials it still has running
    (the run was stopped before it told them) are the caller's to tell or run again
    (PairingSearch). One that is missing, or lags its rows (a remote journal uploaded before
    the run was killed), is built anew from the rows."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study created
    direction = "maximize" if objective.mode == "max" else "minimize"
    by_number = {int(r["trial"]): r for r in rows}
    if storage is not None and name in _study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        if len(study.trials) > max(by_number, default=-1):
            return study
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, direction=direction
    )
    _add_rows(study, space, by_number)
    return study


def _study_names(storage: optuna.storages.BaseStorage) -> set[str]:
    return {s.study_name for s in storage.get_all_studies()}


def _add_rows(study: optuna.Study, space: SearchSpace, by_number: dict[int, dict]) -> None:
    """The rows as finished trials, numbered as in the run: a number without a row (a trial
    cut off before it ended) becomes a failed trial, so later numbers still line up."""
    dists = distributions(space)
    for number in range(max(by_number, default=-1) + 1):
        row = by_number.get(number)
        if row is None:
            study.add_trial(optuna.trial.create_trial(state=States.FAIL))
            continue
        params = {k: v for k, v in json.loads(row["params"]).items() if k in dists}
        state, value = told(row)
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value,
                params=params,
                distributions={k: dists[k] for k in params},
            )
        )


def told(row: dict[str, Any]) -> tuple[optuna.trial.TrialState, float | None]:
    """What Optuna is told of a trial row: a finished one's value; an undefined score is a
    failure (Optuna learns nothing from NaN)."""
    state = STATE_OF_STATUS.get(row["status"], States.FAIL)
    score = row.get("score")
    if state == States.COMPLETE:
        if score is None or math.isnan(score):
            return States.FAIL, None
        return state, float(score)
    return state, None
