"""cluster.yaml is a valid Ray cluster-launcher config, checked against the schema inside Ray."""

import json
from pathlib import Path

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_yaml_matches_rays_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    jsonschema.validate(config, schema)


def test_cluster_has_a_cpu_head_and_two_gpu_worker_types():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    gpus = sorted(
        t["resources"]["GPU"] for name, t in types.items() if name != config["head_node_type"]
    )
    assert gpus == [1, 4]
    assert (
        config["docker"]["image"].startswith("rayproject/ray:")
        and "ray-ml" not in config["docker"]["image"]
    )
    assert any("pip install" in c and "bench" in c for c in config["setup_commands"])
