"""The report opened in headless Chromium: rendered (not blank) and its rows in the DOM."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from bench.report.build import build_report
from bench.testing.synthetic import write_synthetic_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (.ci/run installs it)"
)


def chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_renders_and_lists_the_leaderboard(tmp_path):
    write_synthetic_run(str(tmp_path), "b", ["d1", "d2"], ["alpha", "beta", "gamma"])
    html = build_report([str(tmp_path)], out=str(tmp_path / "out")).html
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", html.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    assert (pixels < 128).mean() > 0.01
    dom = chromium(tmp_path, "--dump-dom", html.as_uri()).stdout
    assert dom.count('class="leaderboard-row"') == 6
    for model in ("alpha", "beta", "gamma"):
        assert f"<td>{model}</td>" in dom
