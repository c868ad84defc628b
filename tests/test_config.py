import re

import pytest
import yaml

from bench.config import load_benchmark, validate_benchmark
from bench.errors import ConfigError

GOOD = {
    "name": "t",
    "models": ["mlp", "resnet1*"],
    "datasets": ["digits", {"name": "imagefolder", "path": "/data/flowers", "image_size": 32}],
    "search_space": {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
        "hidden_dim": [64, 128],
        "optimizer": "adam",
    },
    "overrides": {"mlp": {"depth": {"type": "int", "low": 1, "high": 3}}},
    "model_budgets": {"resnet18": {"trials": 2, "epochs": 1}},
    "search": {"trials": 4, "sampler": "random", "asha": {"grace_period": 1}},
    "resources": {"gpus_per_worker": 0.25},
}


def write(tmp_path, raw, name="bench.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


def error_of(tmp_path, raw, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        load_benchmark(write(tmp_path, raw), overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_config_expands_globs_and_merges_spaces(tmp_path):
    config = load_benchmark(write(tmp_path, GOOD))
    assert config.models == ["mlp", "resnet101", "resnet18"]
    assert config.datasets[1].key == "imagefolder@flowers"
    mlp = config.space_for("mlp")
    assert set(mlp) == {"lr", "dropout", "hidden_dim", "optimizer", "depth"}
    assert mlp["hidden_dim"].type == "choice" and mlp["optimizer"].type == "fixed"
    # resnets take no dropout/hidden_dim: the shared space keeps only what they understand
    assert set(config.space_for("resnet18")) == {"lr", "optimizer"}
    assert config.budget_for("resnet18").trials == 2
    assert config.budget_for("mlp").trials == 4
    assert config.resources.gpus_per_worker == 0.25


def test_cli_overrides_win(tmp_path):
    config = load_benchmark(
        write(tmp_path, GOOD), {"search.trials": 9, "cv.folds": 5, "models": ["mlp"]}
    )
    assert (config.search.trials, config.cv.folds, config.models) == (9, 5, ["mlp"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"serach": {}}, "unknown key (did you mean 'search'?)"),
        ({"search": {"trails": 3}}, "search.trails: unknown key (did you mean 'trials'?)"),
        (
            {"models": ["resnet19"]},
            "models[0]: unknown model 'resnet19' (did you mean 'resnet18'?)",
        ),
        ({"models": ["nothing*"]}, "no model matches 'nothing*'"),
        ({"datasets": ["mnits"]}, "unknown dataset 'mnits' (did you mean 'mnist'?)"),
        ({"datasets": ["imagefolder"]}, "dataset 'imagefolder' needs 'path'"),
        ({"datasets": [{"name": "digits", "root": "/x"}]}, "takes no option 'root'"),
        (
            {"search_space": {"lr": {"type": "loguniform", "low": 1e-2, "high": 1e-4}}},
            "low (0.01) > high (0.0001); swap them",
        ),
        (
            {"search_space": {"lr": {"type": "loguniform", "low": 0, "high": 1}}},
            "a log-scale range needs low > 0",
        ),
        (
            {"search_space": {"weight_decy": 0.1}},
            "unknown hyperparameter (did you mean 'weight_decay'",
        ),
        (
            {"search_space": {"optimizer": ["adam", "sdg"]}},
            "unknown optimizer 'sdg' (did you mean 'sgd'?)",
        ),
        ({"search": {"sampler": "bayes"}}, "search.sampler"),
        (
            {"search_space": {"schedule": "cosin"}},
            "unknown schedule 'cosin' (did you mean 'cosine'?)",
        ),
        ({"search_space": {"class_weight": ["balanced", "auto"]}}, "unknown class_weight 'auto'"),
        ({"search": {"metric": "f1"}}, "unknown metric 'f1' (did you mean"),
        ({"cv": {"folds": 1}}, "cv.folds"),
        ({"cv": {"seed": -1}}, "cv.seed"),
        ({"evaluation": {"repeats": 0}}, "evaluation.repeats"),
        ({"evaluation": {"search": "twice"}}, "evaluation.search"),
        ({"evaluation": {"bootstrap": 10}}, "evaluation.bootstrap"),
        ({"evaluation": {"repeat": 3}}, "evaluation.repeat: unknown key (did you mean 'repeats'"),
        ({"search": {"batch": -1}}, "search.batch"),
        ({"resources": {"workers": 2, "gpus_per_worker": 0.5}}, "fractional gpus_per_worker"),
        (
            {"overrides": {"vgg61": {"lr": 0.1}}},
            "overrides.vgg61: unknown model (did you mean 'vgg16'?)",
        ),
        ({"overrides": {"mlp": {"width": 3}}}, "overrides.mlp.width: unknown hyperparameter"),
        (
            {"overrides": {"mlp@mnist": {"lr": 0.1}}},
            "overrides.mlp@mnist: no dataset 'mnist' in this benchmark; use one of: digits",
        ),
        ({"overrides": {"@digits": {"widht": 3}}}, "overrides.@digits.widht: unknown hyper"),
        (
            {"model_budgets": {"mpl": {"trials": 1}}},
            "model_budgets.mpl: unknown model (did you mean 'mlp'?)",
        ),
        ({"model_budgets": {"mlp": {"trials": 0}}}, "model_budgets.mlp.trials"),
        (
            {"model_resources": {"resnet18": {"cpu": 2}}},
            "model_resources.resnet18.cpu: unknown key (did you mean 'cpus_per_worker'?)",
        ),
        (
            {"model_resources": {"mpl": {"cpus_per_worker": 2}}},
            "model_resources.mpl: unknown model (did you mean 'mlp'?)",
        ),
        (
            {"model_resources": {"resnet18": {"workers": 2}}},  # with the shared 0.25 GPU
            "model_resources.resnet18: fractional gpus_per_worker needs workers: 1",
        ),
        ({"search": {"sampler": "grid"}}, "the grid sampler takes only choice lists"),
        (
            {"search_space": {"input_fit": "crop"}},
            "unknown input_fit 'crop' (known: resize, pad)",
        ),
        (
            {"search_space": {"hflip": {"type": "uniform", "low": 0.0, "high": 1.5}}},
            "search_space.hflip: 1.5 is outside [0, 1]",
        ),
        ({"search_space": {"crop_scale": [0.0, 0.5]}}, "crop_scale: 0.0 is outside [0.01, 1]"),
        ({"overrides": {"resnet18": {"head_dropout": 1}}}, "head_dropout: 1 is outside"),
        ({"resources": {"precision": "fp8"}}, "resources.precision"),
        ({"resources": {"channels_last": "yes"}}, "resources.channels_last"),
        ({"name": ".."}, "name: '..' cannot name the run's folder"),  # outside --output
        ({"name": "a/b"}, "name: 'a/b' cannot name the run's folder"),
        ({"models": []}, "models: the list is empty; name at least one"),
        ({"datasets": []}, "datasets: the list is empty; name at least one"),
        ({"search_space": {"lr": "fast"}}, "search_space.lr: 'fast' is outside [1e-08, 10]"),
    ],
)
def test_bad_input_names_file_key_and_fix(tmp_path, change, expected):
    raw = {**GOOD, **change}
    message = error_of(tmp_path, raw)
    assert str(tmp_path / "bench.yaml") in message
    assert expected in message


def test_malformed_yaml_names_the_line(tmp_path):
    message = error_of(tmp_path, "name: x\nmodels: [mlp\ndatasets: [digits]\n")
    assert "malformed YAML" in message and "line" in message


def test_a_key_given_twice_is_refused_not_dropped(tmp_path):
    message = error_of(
        tmp_path, "name: x\nmodels: [mlp]\ndatasets: [digits]\nmodels: [simple_cnn]\n"
    )
    assert "line 4" in message and "key 'models' appears twice" in message
    nested = "name: x\nmodels: [mlp]\ndatasets: [digits]\nsearch: {trials: 2, trials: 3}\n"
    assert "key 'trials' appears twice" in error_of(tmp_path, nested)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\nmodels: [mlp]\ndatasets: [digits]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text .*; save the file as UTF-8"):
        load_benchmark(path)


def test_empty_models_flag_is_refused(tmp_path):
    message = error_of(tmp_path, GOOD, models=[])  # bench run --models ""
    assert "models: the list is empty" in message


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="no such benchmark file"):
        load_benchmark(tmp_path / "nope.yaml")
    assert "expected a mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_bad_cli_override_is_reported_like_the_file(tmp_path):
    message = error_of(tmp_path, GOOD, **{"search.trials": 0})
    assert "search.trials" in message


def test_every_shipped_definition_validates():
    from pathlib import Path

    shipped = sorted(Path(__file__).resolve().parent.parent.glob("search_spaces/*.yaml"))
    assert shipped, "search_spaces/ holds no benchmark definitions"
    for path in shipped:
        load_benchmark(path)


def test_validate_without_a_file_uses_given_source():
    with pytest.raises(ConfigError, match="^<cli>: models"):
        validate_benchmark({"name": "x", "models": ["nope"], "datasets": ["digits"]}, "<cli>")


def test_resolved_yaml_loads_back_to_the_same_config(tmp_path):
    from bench.config import to_yaml

    config = load_benchmark(write(tmp_path, GOOD))
    again = load_benchmark(write(tmp_path, to_yaml(config), name="resolved.yaml"))
    assert again.model_dump() == config.model_dump()


def test_augmentation_and_fine_tuning_options_are_searchable(tmp_path):
    raw = {
        **GOOD,
        "search_space": {
            "hflip": [0.0, 0.5],
            "rotation": {"type": "uniform", "low": 0, "high": 30},
            "crop_scale": {"type": "uniform", "low": 0.3, "high": 1.0},
            "mixup": [0.0, 0.2],
            "cutmix": 1.0,
            "erasing": 0.25,
            "input_fit": ["resize", "pad"],
        },
        "overrides": {"resnet18": {"strategy": "head_only", "unfreeze_after": [0, 2]}},
        "resources": {"precision": "bf16", "channels_last": True},
    }
    config = load_benchmark(write(tmp_path, raw))
    space = config.space_for("resnet18")
    assert space["hflip"].values == [0.0, 0.5] and space["unfreeze_after"].values == [0, 2]
    assert set(config.space_for("mlp")) >= {"rotation", "mixup", "input_fit"}
    assert config.resources.precision == "bf16" and config.resources.channels_last is True


def test_set_flags_reach_any_key(tmp_path):
    from bench.config import parse_assignments

    overrides = parse_assignments(
        [
            "datasets.1.path=/elsewhere",
            "datasets.0.image_size=16",
            "search_space.hflip=[0.0, 0.5]",
            "model_budgets.mlp.epochs=3",
        ]
    )
    config = load_benchmark(write(tmp_path, GOOD), overrides)
    assert config.datasets[1].path == "/elsewhere" and config.datasets[0].image_size == 16
    assert config.space_for("mlp")["hflip"].values == [0.0, 0.5]
    assert config.budget_for("mlp").epochs == 3
    with pytest.raises(ConfigError, match="not an index of a 2-entry list; use 0 to 1"):
        load_benchmark(write(tmp_path, GOOD), parse_assignments(["datasets.5.path=x"]))
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignments(["search.trials"])


def test_overrides_by_dataset_and_by_pairing(tmp_path):
    raw = {
        **GOOD,
        "overrides": {
            "resnet18": {"lr": 0.5, "strategy": "full"},
            "@imagefolder@flowers": {"weights": "imagenet", "hidden_dim": [32], "lr": 0.2},
            "resnet18@imagefolder@flowers": {"lr": 0.1},
        },
    }
    config = load_benchmark(write(tmp_path, raw))
    on_digits = config.space_for("resnet18", "digits")
    assert on_digits["lr"].value == 0.5 and "weights" not in on_digits
    on_flowers = config.space_for("resnet18", "imagefolder@flowers")
    assert on_flowers["lr"].value == 0.1 and on_flowers["weights"].value == "imagenet"
    assert "hidden_dim" not in on_flowers  # the dataset's entry holds params resnets lack
    assert config.space_for("mlp", "imagefolder@flowers")["hidden_dim"].values == [32]


def test_model_resources_change_only_their_model_and_only_the_keys_given(tmp_path):
    raw = {**GOOD, "model_resources": {"resnet18": {"gpus_per_worker": 1, "precision": "fp32"}}}
    config = load_benchmark(write(tmp_path, raw))
    resnet, mlp = config.resources_for("resnet18"), config.resources_for("mlp")
    assert (resnet.gpus_per_worker, resnet.precision, resnet.cpus_per_worker) == (1, "fp32", 1)
    assert mlp == config.resources and mlp.gpus_per_worker == 0.25
    # saved with a run and read back on --resume: the same definition
    from bench.config import to_yaml

    assert validate_benchmark(yaml.safe_load(to_yaml(config)), "again") == config


@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        (["digits", "digits"], r"datasets\[1\]: the same dataset as datasets\[0\]; list it once"),
        (
            [
                {"name": "imagefolder", "path": "/x/my photos"},
                {"name": "imagefolder", "path": "/y/my_photos"},
            ],
            r"datasets\[0\] \(/x/my photos\) and datasets\[1\] \(/y/my_photos\) would share "
            r"the run's files named 'imagefolder@my_photos' .*rename one of the folders",
        ),
        (
            [
                {"name": "imagefolder", "path": "/a/train"},
                {"name": "imagefolder", "path": "/b/train"},
            ],
            r"datasets\[0\] \(/a/train\) and datasets\[1\] \(/b/train\) would share",
        ),
    ],
)
def test_two_datasets_that_would_share_files_are_refused_by_name(tmp_path, datasets, expected):
    """`my photos` and `my_photos` once wrote each other's trial, replicate and kept-model
    files (both become imagefolder@my_photos in file names)."""
    raw = {"name": "t", "models": ["mlp"], "datasets": datasets}
    assert re.search(expected, error_of(tmp_path, raw))


def test_a_value_the_message_quotes_is_not_repeated(tmp_path):
    message = error_of(tmp_path, {**GOOD, "search": {"metric": "f1"}})
    assert message.count("'f1'") == 1, message
    assert "(got 0)" in error_of(tmp_path, {**GOOD, "budget": {"batch_size": 0}})
