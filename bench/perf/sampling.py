"""A measurement taken on a background thread while a `with` block runs (GPU utilization,
per-process CPU time)."""

from __future__ import annotations

import threading


class PeriodicSampler:
    """Calls `sample()` every `interval` seconds on a daemon thread from `__enter__` (the first
    call at once) to `__exit__`; a `sample()` that returns False ends the sampling early."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> bool | None:
        raise NotImplementedError

    def _run(self) -> None:
        while self.sample() is not False and not self._stop.wait(self.interval):
            pass

    def __enter__(self) -> PeriodicSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
