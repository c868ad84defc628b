"""The driver's door to Ray (bench/driver.py): Ray's start-up notices are shown only with
--debug, its warnings during the run always."""

from __future__ import annotations

import logging

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
