"""The one thread that runs the engine during a live run, warmed up on itself.

Part of what a block first needs is set up per thread, inside torch and the libraries under it:
a fresh thread's first block cost 14 ms more than the next ones on an engine already warmed up
on another thread, and a device waiting on the worker has one block's time to spare. So the
thread that runs the blocks is the one that warms the engine up, before the device starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..engine import StyleEngine


class EngineThread:
    def __init__(self, engine: StyleEngine) -> None:
        self._engine = engine
        self._job: Callable[[], None] | None = None
        self._warm = threading.Event()
        self._go = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="mst-live engine", daemon=True)

    def warm_up(self) -> None:
        """Start the thread and wait until it has run the engine's warm-up; a failure there is
        raised here, on the caller's thread."""
        self._thread.start()
        self._warm.wait()
        if self._error is not None:
            raise self._error

    def start(self, job: Callable[[], None]) -> None:
        """Run ``job`` (the worker loop) on the warmed-up thread."""
        self._job = job
        self._go.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job to end; a thread never given a job ends here without one."""
        self._go.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            self._engine.warm_up()
        except BaseException as exc:  # handed to the caller of warm_up, which reports it
            self._error = exc
            return
        finally:
            self._warm.set()
        self._go.wait()
        if self._job is not None:
            self._job()
