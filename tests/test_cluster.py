"""Real Ray processes on loopback: a head (dashboard + job server) and a second node, a tiny
benchmark submitted with `bench submit --wait`, trials spread over both nodes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def node_ports() -> list[str]:
    names = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ]
    return [f"{name}={port}" for name, port in zip(names, free_ports(len(names)), strict=True)]


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    """`ray start --block` processes: stopping them (SIGTERM) stops exactly what they started,
    leaving any other Ray on this machine alone. Token auth stays on, with a test token."""
    tmp = tmp_path_factory.mktemp("cluster")
    gcs, dashboard, client = free_ports(3)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    common = [
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--object-store-memory=150000000",
        "--disable-usage-stats",
    ]
    head = _start_node(
        [
            "--head",
            f"--port={gcs}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--ray-client-server-port={client}",
            "--resources",
            json.dumps({"head_node": 1}),
            *common,
        ],
        env,
        tmp / "head.log",
    )
    address = f"http://127.0.0.1:{dashboard}"
    _wait_for_dashboard(address, env, head)
    second = _start_node(
        [f"--address=127.0.0.1:{gcs}", "--resources", json.dumps({"second_node": 1}), *common],
        env,
        tmp / "second.log",
    )
    _wait_for_nodes(f"127.0.0.1:{gcs}", env, 2)
    yield {"address": address, "env": env, "tmp": tmp, "gcs": f"127.0.0.1:{gcs}"}
    for process in (second, head):
        os.killpg(process.pid, signal.SIGTERM)
    for process in (second, head):
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _start_node(args, env, log):
    """One `ray start --block` node with its own ports, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", *args, *node_ports()],
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _bench(args, env, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _wait_for_dashboard(address, env, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("ray head exited during start")
        if _bench(["jobs", "list", "--address", address], env, timeout=60).returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError("the head's dashboard did not come up")


def _wait_for_nodes(gcs_address, env, count, timeout=120):
    script = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = subprocess.run(
            [sys.executable, "-c", script, gcs_address],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines and lines[-1] == str(count):
            return
        time.sleep(2)
    raise TimeoutError(f"{count} nodes did not join")


def test_submitted_benchmark_runs_on_both_nodes(two_node_cluster, tmp_path):
    cluster = two_node_cluster
    output = tmp_path / "results"
    benchmark = tmp_path / "multi.yaml"
    benchmark.write_text(
        yaml.safe_dump(
            {
                "name": "multi",
                "models": ["mlp"],
                "datasets": ["digits"],
                "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
                "search": {"trials": 4, "max_concurrent_trials": 2},
                "cv": {"folds": 2},
                "budget": {"epochs": 3},
                "output": str(output),
            }
        )
    )
    done = _bench(
        ["submit", str(benchmark), "--address", cluster["address"], "--wait"], cluster["env"]
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job_id = done.stdout.splitlines()[0].strip()
    assert "SUCCEEDED" in done.stderr
    run = next(output.glob("multi/*"))
    folds = pd.read_parquet(run / "folds.parquet")
    assert len(folds) == 4 * 2
    assert folds.node_id.nunique() == 2, folds.node_id.unique()
    board = pd.read_parquet(run / "leaderboard.parquet")
    assert board.status.tolist() == ["ok"]
    # the jobs commands see the same job; the token never reaches results or job logs
    listed = _bench(["jobs", "list", "--address", cluster["address"]], cluster["env"])
    assert job_id in listed.stdout and "SUCCEEDED" in listed.stdout
    status = _bench(["jobs", "status", job_id, "--address", cluster["address"]], cluster["env"])
    assert "SUCCEEDED" in status.stdout
    logs = _bench(["jobs", "logs", job_id, "--address", cluster["address"]], cluster["env"])
    assert "results:" in logs.stdout
    token = cluster["env"]["RAY_AUTH_TOKEN"]
    assert token not in logs.stdout
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".parquet", ".csv", ".txt", ".log"}:
            assert token.encode() not in path.read_bytes(), path


def test_wrong_token_and_unreachable_address_are_one_line(two_node_cluster):
    cluster = two_node_cluster
    env = {**cluster["env"], "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    rejected = _bench(["jobs", "list", "--address", cluster["address"]], env)
    assert rejected.returncode == 2
    assert "rejected the authentication token" in rejected.stderr
    assert rejected.stderr.count("\n") == 1
    port = free_ports(1)[0]
    unreachable = _bench(["jobs", "list", "--address", f"http://127.0.0.1:{port}"], cluster["env"])
    assert unreachable.returncode == 2 and "cannot reach the Ray dashboard" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1


def test_a_client_without_token_mode_is_told_to_set_it(two_node_cluster, tmp_path):
    """Ray sends the token only with RAY_AUTH_MODE=token: a client holding the token but not
    the mode is told to set the mode (not that its token was rejected)."""
    cluster = two_node_cluster
    env = {k: v for k, v in cluster["env"].items() if k != "RAY_AUTH_MODE"}
    listed = _bench(["jobs", "list", "--address", cluster["address"]], env)
    assert listed.returncode == 2
    assert "set RAY_AUTH_MODE=token" in listed.stderr and "rejected" not in listed.stderr
    assert listed.stderr.count("\n") == 1
    # joining the cluster to run a benchmark: the same advice, and no run folder left behind
    benchmark = tmp_path / "mini.yaml"
    benchmark.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "models": ["mlp"],
                "datasets": ["digits"],
                "output": str(tmp_path / "results"),
            }
        )
    )
    joined = _bench(["run", str(benchmark), "--address", cluster["gcs"]], env)
    assert joined.returncode == 2, joined.stderr[-2000:]
    (line,) = joined.stderr.strip().splitlines()
    assert (
        line.startswith("BenchError: cannot join the Ray cluster") and "RAY_AUTH_MODE=token" in line
    )
    assert not list((tmp_path / "results").glob("mini/*"))


def test_rays_own_job_cli_runs_bench_too(two_node_cluster, tmp_path):
    cluster = two_node_cluster
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "mini.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "models": ["mlp"],
                "datasets": ["digits"],
                "search": {"trials": 1},
                "cv": {"folds": 2},
                "budget": {"epochs": 1},
            }
        )
    )
    output = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "job",
            "submit",
            "--address",
            cluster["address"],
            "--working-dir",
            str(folder),
            "--",
            "bench",
            "run",
            "mini.yaml",
            "--output",
            str(output),
        ],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    run = next(output.glob("mini/*"))
    assert pd.read_parquet(run / "leaderboard.parquet").status.tolist() == ["ok"]


def test_jobs_stop_ends_a_running_job(two_node_cluster, tmp_path):
    cluster = two_node_cluster
    benchmark = tmp_path / "long.yaml"
    benchmark.write_text(
        yaml.safe_dump(
            {
                "name": "long",
                "models": ["simple_cnn"],
                "datasets": ["digits"],
                "search": {"trials": 50},
                "cv": {"folds": 2},
                "budget": {"epochs": 50},
                "output": str(tmp_path / "results"),
            }
        )
    )
    submitted = _bench(["submit", str(benchmark), "--address", cluster["address"]], cluster["env"])
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[0]
    stopped = _bench(["jobs", "stop", job_id, "--address", cluster["address"]], cluster["env"])
    assert stopped.returncode == 0 and stopped.stdout.strip() in {"stopped", "not running"}
    deadline = time.time() + 120
    while time.time() < deadline:
        status = _bench(["jobs", "status", job_id, "--address", cluster["address"]], cluster["env"])
        if "STOPPED" in status.stdout:
            break
        time.sleep(2)
    assert "STOPPED" in status.stdout
