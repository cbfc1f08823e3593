"""--events FILE: the status as JSON lines, for scripts and tests.

One line a second (type "status"), and one for each parameter change ("param"), underrun
("underrun") and error ("error"). Written from the worker and control threads, never from the
audio callback. One run a file: an existing file is replaced, so that every line's time ``t``
counts from the start of the run that wrote it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any


class EventLog:
    def __init__(self, path: str | os.PathLike | None) -> None:
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._last_status = -1.0
        self._f = open(path, "w", buffering=1, encoding="utf-8") if path else None

    def emit(self, kind: str, **fields: Any) -> None:
        if self._f is None:
            return
        line = json.dumps({"t": round(time.monotonic() - self._t0, 3), "type": kind, **fields})
        with self._lock:
            self._f.write(line + "\n")

    def status(self, fields: dict[str, Any], *, force: bool = False) -> None:
        """At most one status line a second unless forced."""
        now = time.monotonic()
        if force or now - self._last_status >= 1.0:
            self._last_status = now
            self.emit("status", **fields)

    def close(self) -> None:
        if self._f is not None:
            with self._lock:
                self._f.close()
                self._f = None
