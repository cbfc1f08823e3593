"""A progress bar for long jobs, or nothing when quiet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn


@contextmanager
def progress_bar(description: str, *, quiet: bool = False) -> Iterator[Callable[[float, float], None]]:
    """Yields ``update(done, total)``; draws on stderr unless quiet."""
    if quiet:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    ) as prog:
        task = prog.add_task(description, total=None)

        def update(done: float, total: float) -> None:
            prog.update(task, completed=done, total=total)

        yield update
