"""The driver's door to Ray (bench/driver.py): Ray's start-up notices are shown only with
--debug, its warnings during the run always."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from bench import driver

# What Ray 2.60's local start logs through this logger (authentication_token_setup.py).
NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
NOTICE = "Token authentication is enabled for this Ray cluster."


@pytest.fixture
def ray_start(monkeypatch):
    """ray.init replaced by what it does to the driver's console: it sets the "ray" logger's
    level to `logging_level` (ray._private.ray_logging.setup_logger) and logs its notice. The
    logged messages are collected."""
    ray_logger = logging.getLogger("ray")
    level, logged = ray_logger.level, []
    collector = logging.Handler()
    collector.emit = lambda record: logged.append(record.getMessage())

    def init(**kwargs):
        ray_logger.setLevel(kwargs["logging_level"])
        logging.getLogger(NOTICE_LOGGER).warning(NOTICE)

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(driver.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(driver.ray, "init", init)
    ray_logger.addHandler(collector)
    yield logged
    ray_logger.removeHandler(collector)
    ray_logger.setLevel(level)


def test_ray_start_up_notices_are_hidden_and_its_later_warnings_shown(ray_start):
    assert driver.connect(echo=lambda line: None) is True  # it started a local instance
    assert ray_start == []
    logging.getLogger("ray.tune").warning("a warning while the run goes on")
    assert ray_start == ["a warning while the run goes on"]


def test_debug_shows_ray_start_up_notices(ray_start):
    driver.connect(echo=lambda line: None, debug=True)
    assert ray_start == [NOTICE]
    logging.getLogger("ray.tune").info("Tune's own information")
    assert ray_start[-1] == "Tune's own information"


def test_the_driver_s_modules_import_no_torch():
    """torch's import alone takes ~270 MB of private memory in each process; the driver
    (CLI, runner, search, results, report, audit) must not pay it: only trial actors do."""
    code = (
        "import sys, bench.cli, bench.runner, bench.tune.search, bench.results.finalize, "
        "bench.report, bench.audit.run, bench.preflight, bench.environment\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_local_run_s_driver_never_imports_torch_and_shows_the_dashboard_on_request(tmp_path):
    """A whole `bench run --dashboard`, its data audit included: the dashboard answers at the
    address printed, on loopback, and the driver ends the run without torch imported."""
    code = (
        "import sys\nfrom bench.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('torch imported:', 'torch' in sys.modules, flush=True)\nsys.exit(status)"
    )
    flags = ["--models", "mlp", "--trials", "1", "--epochs", "1", "--folds", "2"]
    flags += ["--set", "evaluation.repeats=1"]
    command = [sys.executable, "-u", "-c", code, "run", *flags, "--dashboard"]
    command += ["--output", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    lines, answered = [], None
    for line in child.stdout:
        lines.append(line)
        if line.startswith("bench: Ray's dashboard: "):
            url = line.split(": ", 2)[2].strip()
            assert url.startswith("http://127.0.0.1:")
            answered = http_status(f"{url}/api/version")
    assert child.wait(timeout=300) == 0, "".join(lines)
    assert answered in (200, 401), "".join(lines)  # 401: it asks for the cluster's token
    assert "torch imported: False\n" in lines


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as refused:
        return refused.code
