"""The README's examples stay true: every YAML block in it is a valid benchmark definition
(or a valid fragment of one)."""

import re
from pathlib import Path

import yaml

from bench.config import validate_benchmark

README = Path(__file__).resolve().parent.parent / "README.md"
BASE = {"name": "readme", "models": ["mlp"], "datasets": ["digits"]}


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)


def test_every_yaml_block_validates():
    blocks = yaml_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        raw = yaml.safe_load(block)
        # Fragments (an `overrides:` snippet) are checked inside a minimal definition.
        merged = {**BASE, **raw}
        if "overrides" in raw and "models" not in raw:
            merged["models"] = ["mlp", "resnet*"]
            merged["datasets"] = ["digits", "mnist", "cifar10"]
        validate_benchmark(merged, source="README.md")
