"""Credentials in URIs stay out of what bench prints and stores (bench/redaction.py), and a
run whose config.yaml had them masked still resumes or extends."""

from __future__ import annotations

import pytest
import yaml

from bench.config import validate_benchmark
from bench.errors import ConfigError
from bench.redaction import masked, redact
from bench.results.store import RunStore
from bench.runner import save_definition


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("s3://AKIAXYZ:abc/de+f@bucket/runs", "s3://AKIAXYZ:***@bucket/runs"),
        ("https://bob:hunter2@mlflow.example:5000/", "https://bob:***@mlflow.example:5000/"),
        (
            "s3://bucket/x?access_key=AK&secret_key=abc&region=eu",
            "s3://bucket/x?access_key=AK&secret_key=***&region=eu",
        ),
        ("gs://bucket/x?token=ya29.abc", "gs://bucket/x?token=***"),
        ("bench run b.yaml --resume s3://K:S@b/r", "bench run b.yaml --resume s3://K:***@b/r"),
        ("s3://bucket/a:b/c", "s3://bucket/a:b/c"),  # no credentials: unchanged
        ("results/b/run", "results/b/run"),
    ],
)
def test_passwords_and_secret_parameters_are_masked(text, shown):
    assert redact(text) == shown
    assert masked(redact(text)) == (text != shown)


def secret_definition(tmp_path) -> dict:
    return {
        "name": "b",
        "models": ["mlp"],
        "datasets": [{"name": "imagefolder", "path": "s3://AKIA:TOPSECRET@bucket/photos"}],
        "output": "s3://AKIA:TOPSECRET@bucket/results",
    }


def test_config_yaml_keeps_no_credentials_and_an_extension_still_compares(tmp_path):
    from bench.config import check_extension

    store = RunStore(str(tmp_path / "run"))
    config = validate_benchmark(secret_definition(tmp_path), source="b.yaml")
    save_definition(store, config)
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert "TOPSECRET" not in text and "s3://AKIA:***@bucket/photos" in text
    # the file given again, with its secrets, is the same definition as the run's masked one
    saved = validate_benchmark(yaml.safe_load(text), source="config.yaml")
    check_extension(saved, config, "b.yaml")


def test_resuming_from_a_masked_definition_alone_asks_for_the_file(tmp_path):
    from bench.resuming import resumed_definition

    store = RunStore(str(tmp_path / "run"))
    save_definition(store, validate_benchmark(secret_definition(tmp_path), source="b.yaml"))
    with pytest.raises(ConfigError, match=r"datasets\[0\] of the run has credentials"):
        resumed_definition(store, None, None, {})
