"""A progress bar for long jobs, or nothing when quiet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn


@contextmanager
def progress_bar(description: str, *, quiet: bool = False) -> Iterator[Callable[[float, float], None]]:
    """Yields ``update(done, total)``; draws on stderr unless quiet.

    The bar appears at the first update, so a job refused while checking its input prints
    its one error line and no half-drawn bar.
    """
    if quiet:
        yield lambda done, total: None
        return
    state: dict = {}

    def update(done: float, total: float) -> None:
        if "prog" not in state:
            prog = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
            prog.start()
            state["prog"], state["task"] = prog, prog.add_task(description, total=None)
        state["prog"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "prog" in state:
            state["prog"].stop()
