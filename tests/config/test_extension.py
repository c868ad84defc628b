"""Which definitions may extend a finished run: more trials, repeats, models or datasets, and
other resources, yes; anything that would make the new rows incomparable, refused by key."""

import pytest

from bench.config import check_extension, validate_benchmark
from bench.errors import ConfigError

BASE = {
    "name": "b",
    "models": ["mlp"],
    "datasets": [{"name": "digits", "image_size": 8}],
    "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
    "search": {"trials": 4, "seed": 0},
    "cv": {"folds": 3, "seed": 0, "test_fraction": 0.2},
    "evaluation": {"repeats": 2},
    "budget": {"epochs": 3},
}


def config(**changes):
    raw = {**BASE, **changes}
    return validate_benchmark(raw, source="b.yaml")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"search": {"trials": 8, "seed": 0}},
        {"evaluation": {"repeats": 3}},
        {"models": ["mlp", "simple_cnn"]},
        {"datasets": [{"name": "digits", "image_size": 8}, "mnist"]},
        {"resources": {"cpus_per_worker": 2}},
        {"search": {"trials": 4, "seed": 0, "max_concurrent_trials": 1, "retries": 3}},
        # a space for a model the run did not have changes none of its rows
        {"models": ["mlp", "simple_cnn"], "overrides": {"simple_cnn": {"lr": 0.01}}},
        {"output": "elsewhere"},
    ],
)
def test_what_extends_a_run(changes):
    check_extension(config(), config(**changes), "b.yaml")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"search": {"trials": 2, "seed": 0}}, "search.trials is 2, fewer than the run's 4"),
        ({"evaluation": {"repeats": 1}}, "evaluation.repeats is 1, fewer than the run's 2"),
        ({"cv": {"folds": 5, "seed": 0, "test_fraction": 0.2}}, "cv.folds is 5, the run had 3"),
        ({"cv": {"folds": 3, "seed": 1, "test_fraction": 0.2}}, "cv.seed is 1"),
        ({"cv": {"folds": 3, "seed": 0, "test_fraction": 0.3}}, "cv.test_fraction is 0.3"),
        ({"search": {"trials": 4, "seed": 7}}, "search.seed is 7"),
        ({"search": {"trials": 4, "metric": "accuracy"}}, "search.metric is accuracy"),
        ({"budget": {"epochs": 5}}, "budget.epochs is 5, the run had 3"),
        ({"datasets": [{"name": "digits", "image_size": 16}]}, "datasets.digits.image_size is 16"),
        (
            {"search_space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}}},
            "the search space of mlp@digits: lr",
        ),
        ({"overrides": {"mlp": {"weight_decay": 0.01}}}, "mlp@digits: weight_decay is "),
        ({"datasets": ["digits"]}, "datasets.digits.image_size is unset, the run had 8"),
        (
            {"search": {"trials": 4, "seed": 0, "asha": {"grace_period": 1}}},
            "search.asha.grace_period is 1, the run left it unset",
        ),
        ({"model_budgets": {"mlp": {"epochs": 9}}}, "model_budgets.mlp.epochs is 9"),
        ({"model_budgets": {"mlp": {"trials": 3}}}, "model_budgets.mlp.trials is 3, fewer"),
    ],
)
def test_what_is_refused_names_the_key(changes, named):
    with pytest.raises(ConfigError) as error:
        check_extension(config(), config(**changes), "b.yaml")
    message = str(error.value)
    assert named in message and "\n" not in message
    assert message.startswith("b.yaml: ")
