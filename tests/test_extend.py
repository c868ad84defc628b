"""A finished run extended (`bench run FILE --resume RUN --trials N`): every pairing's search
goes on from its stored study and keeps its trials, a model added to the file is run, and a
change that would make old and new rows incomparable is refused in one line."""

from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench.cli import main
from bench.results.store import RunStore
from bench.testing.rows import comparable

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def definition(tmp_path: Path, tiny_benchmark) -> Path:
    raw = tiny_benchmark(
        tmp_path,
        models=["mlp"],
        search={"trials": 2, "seed": 0, "sampler": "random", "batch": 2},
        evaluation={"repeats": 2},
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def tables(run: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run / f"{name}.parquet")


def studies(run: Path) -> dict[str, optuna.Study]:
    storage = JournalStorage(JournalFileBackend(str(run / "studies.log")))
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in storage.get_all_studies()
    }


def test_extending_a_finished_run(ray_session, tmp_path, tiny_benchmark, capsys):
    path = definition(tmp_path, tiny_benchmark)
    assert main(["run", str(path)]) == 0
    (run,) = (tmp_path / "results" / "tiny").iterdir()
    before = tables(run, "trials")
    assert sorted(studies(run)) == ["mlp@digits.r0"]  # repeat 1 refits repeat 0's choice

    capsys.readouterr()
    refused = ["run", str(path), "--resume", str(run), "--trials", "4", "--folds", "3"]
    assert main(refused) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cv.folds is 3, the run had 2" in err

    grown = ["run", str(path), "--resume", str(run), "--trials", "4"]
    assert main([*grown, "--models", "mlp,simple_cnn"]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 pairing repeats already finished" in out
    after = tables(run, "trials")
    mlp = after[after.model == "mlp"].sort_values("trial")
    assert list(mlp.trial) == [0, 1, 2, 3]  # two more trials, numbered on
    kept = comparable(mlp[mlp.trial < 2]).reset_index(drop=True)
    assert kept.equals(comparable(before.sort_values("trial")).reset_index(drop=True))
    assert len(after[after.model == "simple_cnn"]) == 4  # the added model ran at the new size

    # the study holds every trial, numbered as trials.parquet
    study = studies(run)["mlp@digits.r0"]
    assert [t.number for t in study.trials] == list(mlp.trial)
    ok = mlp[mlp.status == "ok"]
    assert [t.value for t in study.trials if t.value is not None] == pytest.approx(list(ok.score))

    # the replicate rows name the best of all four trials; one refit per repeat, refit again
    # only if the choice changed
    replicates = tables(run, "replicates")
    best = ok.loc[ok.score.idxmax(), "trial"]
    assert set(replicates[replicates.model == "mlp"].best_trial) == {best}
    assert len(replicates) == 4
    assert RunStore(str(run)).read_json("environment.json")  # the run's own, kept
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["search"]["trials"] == 4 and config["models"] == ["mlp", "simple_cnn"]
