"""Hyperparameters are declared once (bench/hparams.py, the model registry): validation, the
`bench models` listing, the README's tables, the training settings and the optimizer and
schedule factories all follow a declaration, so a new optimizer is one entry."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.config import DatasetConfig, validate_benchmark
from bench.errors import ConfigError
from bench.hparams import AUGMENT, OPTIMIZERS, SCHEDULES, TRAINING, Optimizer, Schedule
from bench.metrics import get_metric
from bench.plan import resolve_pairing
from bench.registry import load_dataset
from bench.registry.models import searchable_docs
from bench.train.build import fold_adapters, model_factory, train_settings
from bench.train.loop import cross_validate
from bench.train.optim import build_optimizer, make_schedule
from bench.train.settings import AugmentSettings, TrainSettings

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def rmsprop(monkeypatch):
    """One entry adds an optimizer; monkeypatch takes it out again after the test."""
    entry = Optimizer("RMSprop", "torch.optim:RMSprop", ("momentum",))
    monkeypatch.setitem(OPTIMIZERS, "rmsprop", entry)
    return entry


def definition(**space):
    return {"name": "t", "models": ["mlp"], "datasets": ["digits"], "search_space": space}


def test_a_new_optimizer_is_validated_searchable_and_documented(rmsprop, capsys):
    config = validate_benchmark(definition(optimizer=["adam", "rmsprop"]))
    assert config.search_space["optimizer"].grid_values() == ["adam", "rmsprop"]
    with pytest.raises(ConfigError) as info:
        validate_benchmark(definition(optimizer="rmsprp"))
    message = str(info.value)
    assert "did you mean 'rmsprop'" in message
    assert "(known: adam, adamw, sgd, rmsprop)" in message
    assert main(["models"]) == 0
    assert "optimizer=adam {adam, adamw, sgd, rmsprop}" in capsys.readouterr().out
    assert "`rmsprop` (RMSprop)" in searchable_docs()


def test_a_new_optimizer_trains(rmsprop):
    """Through the trial's own path: train_settings from the searched values, the model from
    the registry, the loop's optimizer factory."""
    config = validate_benchmark(
        {**definition(optimizer="rmsprop", lr=3e-3), "budget": {"epochs": 3, "batch_size": 32}}
    )
    plan = resolve_pairing(config, "t", "mlp", "digits")
    data = load_dataset(DatasetConfig(name="digits"), folds=2, test_fraction=0.2, seed=0)
    params = {"optimizer": "rmsprop", "lr": 3e-3, "momentum": 0.5}
    settings = train_settings(plan, params)
    assert (settings.optimizer, settings.lr, settings.epochs) == ("rmsprop", 3e-3, 3)
    made = build_optimizer(torch.nn.Linear(2, 2).parameters(), settings)
    assert isinstance(made, torch.optim.RMSprop) and made.defaults["momentum"] == 0.5
    accuracy = get_metric("accuracy")
    outcomes = cross_validate(
        model_factory(plan, data, params),
        data.train_x,
        data.train_y,
        data.folds,
        settings,
        fold_adapters(plan.model, data, params),
        lambda y, p: accuracy.fn(y, p, p.argmax(1), data.num_classes),
    )
    for outcome in outcomes:
        losses = [h.train_loss for h in outcome.history]
        assert len(losses) == 3 and losses[-1] < losses[0]
        assert outcome.history[-1].val_score > 0.5  # ten classes: chance is 0.1


def test_a_new_schedule_is_one_entry(monkeypatch):
    monkeypatch.setitem(SCHEDULES, "linear", Schedule("linear decay", shape=lambda p: 1 - p))
    validate_benchmark(definition(schedule="linear"))
    settings = TrainSettings(epochs=2, batch_size=4, lr=0.1, schedule="linear")
    optimizer = build_optimizer(torch.nn.Linear(2, 2).parameters(), settings)
    schedule = make_schedule(optimizer, settings, 5)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.1) and np.all(np.diff(rates) < 0)


def test_settings_fields_follow_the_declarations():
    fields = {f.name: f.default for f in dataclasses.fields(TrainSettings)}
    for name, param in TRAINING.items():
        if name not in ("batch_size", "input_fit"):  # the budget's and the adapter's
            assert fields[name] == param.default, name
    augment = {f.name: f.default for f in dataclasses.fields(AugmentSettings)}
    assert augment == {name: param.default for name, param in AUGMENT.items()}


def test_values_are_checked_against_their_declaration():
    with pytest.raises(ConfigError, match=r"hflip: 1.5 is outside \[0, 1\]"):
        validate_benchmark(definition(hflip=1.5))
    with pytest.raises(ConfigError, match="unknown strategy 'frozen'"):
        validate_benchmark({**definition(strategy="frozen"), "models": ["resnet18"]})
    with pytest.raises(ConfigError, match=r"shrink: 0.0 is outside \[0.01, 1\]"):
        validate_benchmark(definition(shrink={"type": "uniform", "low": 0.0, "high": 0.5}))


@pytest.mark.parametrize(
    "name, value",
    [
        ("lr", "fast"),  # a string where a number goes: every trial would fail
        ("lr", -1),
        ("lr", [0.1, -3]),
        ("lr", {"type": "uniform", "low": -1, "high": 2}),
        ("weight_decay", 5),
        ("momentum", -0.5),
        ("batch_size", 0),
        ("hidden_dim", 0),
        ("depth", 0),
        ("grad_clip", -1.0),
    ],
)
def test_every_searchable_number_has_bounds(name, value):
    with pytest.raises(ConfigError, match=rf"{name}: .* is outside \[.*\]; give a number"):
        validate_benchmark(definition(**{name: value}))


def test_readme_tables_are_the_declarations():
    text = README.read_text()
    found = re.search(
        r"<!-- hyperparameters: begin.*?-->\n(.*?)<!-- hyperparameters: end", text, re.S
    )
    assert found, "README.md lost its hyperparameter markers"
    assert found.group(1) == searchable_docs(), (
        "README.md's hyperparameter tables are stale: paste the output of "
        "python -c 'from bench.registry.models import searchable_docs; print(searchable_docs())'"
    )


def test_config_and_declarations_import_no_torch():
    code = (
        "import sys, bench.config, bench.hparams, bench.registry, bench.train.settings; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
