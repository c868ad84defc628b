"""Benchmarks as Ray Jobs: submit, follow, list, stop. Ray's JobSubmissionClient reads the
auth token the way Ray does (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), and
sends it only when RAY_AUTH_MODE=token; bench never reads, prints or stores the token.

Joining a cluster (`bench run --address`) goes through the same diagnosis: a cluster with
token authentication refuses a client that sends no token or the wrong one, and the error
says which of the two happened and what to set."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.errors import BenchError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
BENCHMARK_NAME = "benchmark.yaml"


TOKEN_PLACES = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
PRINT_TOKEN = "`ray get-auth-token` on the head prints it"


def auth_problem(text: str) -> str | None:
    """What to do about an authentication failure Ray reported in `text`, or None if `text`
    is about something else."""
    lowered = text.lower()
    if "authentication" not in lowered and "invalidauthtoken" not in lowered:
        return None
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return (
            "the cluster uses token authentication and this client sent no token (Ray sends "
            f"one only with RAY_AUTH_MODE=token); set RAY_AUTH_MODE=token and the cluster's "
            f"token in {TOKEN_PLACES} ({PRINT_TOKEN})"
        )
    if "couldn't find an authentication token" in lowered:
        problem = "RAY_AUTH_MODE=token is set but no token was found"
    elif "invalid authentication token" in lowered:
        problem = "the cluster rejected the authentication token"
    else:  # Ray's core says only "missing or incorrect"
        problem = "the cluster refused this client's token (or found none)"
    return f"{problem}; give the cluster's token in {TOKEN_PLACES} ({PRINT_TOKEN})"


@contextmanager
def _explained(address: str) -> Iterator[None]:
    """Connection and authentication failures as one line that says what to do."""
    try:
        yield
    except BenchError:
        raise
    except Exception as exc:  # the SDK raises ConnectionError, RuntimeError, ValueError, ...
        text = " ".join(str(exc).split())
        lowered = text.lower()
        problem = auth_problem(text)
        if problem:
            raise BenchError(f"{address}: {problem}") from None
        if "connect" in lowered or "refused" in lowered or "timed out" in lowered:
            raise BenchError(
                f"{address}: cannot reach the Ray dashboard ({text[:160]}); check the address "
                f"(http://HEAD:8265) and that the cluster is up"
            ) from None
        raise BenchError(f"{address}: Ray job request failed: {text[:300]}") from None


def join(address: str, **init_args: Any) -> None:
    """`ray.init(address=...)`; a refusal is one line saying what to set. Ray's core reports an
    authentication failure only on stderr, so stderr is captured while it connects (and
    passed on unless it failed)."""
    import ray

    with tempfile.TemporaryFile(mode="w+") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            ray.init(address=address, **init_args)
            failure = None
        except ConnectionError as exc:
            failure = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        output = captured.read()
    if failure is None:
        with contextlib.suppress(OSError):
            os.write(2, output.encode())
        return
    problem = auth_problem(output) or (
        f"{' '.join(str(failure).split())}; check the address (HEAD:6379, or `auto` for a "
        f"`ray start` on this machine) and that the cluster is up"
    )
    raise BenchError(f"cannot join the Ray cluster at {address}: {problem}") from None


def client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    with _explained(address):
        return JobSubmissionClient(address)


def submit(
    benchmark: Path,
    address: str,
    run_args: list[str],
    overrides: dict[str, Any] | None = None,
    ship_source: bool = False,
    env_vars: dict[str, str] | None = None,
) -> str:
    """Submit `bench run benchmark.yaml ...` as a job; returns the job id. The definition is
    validated here with `overrides` (what `run_args` sets on the cluster's side), so a bad
    file or flag is refused before it reaches the cluster."""
    if not benchmark.is_file():
        raise BenchError(f"{benchmark}: no such benchmark file; pass a YAML path")
    from bench.config import load_benchmark

    load_benchmark(benchmark, overrides)
    staging = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    try:
        shutil.copy(benchmark, staging / BENCHMARK_NAME)
        runtime_env: dict[str, Any] = {"working_dir": str(staging)}
        if ship_source:
            import bench

            runtime_env["py_modules"] = [str(Path(bench.__file__).parent)]
        if env_vars:
            runtime_env["env_vars"] = dict(env_vars)
        entrypoint = shlex.join(["python", "-m", "bench.cli", "run", BENCHMARK_NAME, *run_args])
        with _explained(address):
            return client(address).submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def follow(
    address: str, job_id: str, echo: Callable[[str], None] = print, poll_seconds: float = 1.0
) -> str:
    """Print the job's logs as they grow until it ends; returns its final status."""
    jobs = client(address)
    shown = 0
    with _explained(address):
        while True:
            status = str(jobs.get_job_status(job_id).value)
            logs = jobs.get_job_logs(job_id)
            if len(logs) > shown:
                echo(logs[shown:].rstrip("\n"))
                shown = len(logs)
            if status in TERMINAL:
                return status
            time.sleep(poll_seconds)


def list_jobs(address: str) -> list[dict[str, Any]]:
    with _explained(address):
        jobs = client(address).list_jobs()
    return [
        {
            "id": j.submission_id or j.job_id,
            "status": str(j.status.value),
            "entrypoint": j.entrypoint,
            "start_time": j.start_time,
        }
        for j in jobs
    ]


def status(address: str, job_id: str) -> dict[str, Any]:
    with _explained(address):
        info = client(address).get_job_info(job_id)
    return {"id": job_id, "status": str(info.status.value), "message": info.message or ""}


def logs(address: str, job_id: str) -> str:
    with _explained(address):
        return client(address).get_job_logs(job_id)


def stop(address: str, job_id: str) -> bool:
    with _explained(address):
        return bool(client(address).stop_job(job_id))
