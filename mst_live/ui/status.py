"""The one-screen live status, redrawn in place: meters, parameters, load, latency, problems."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


def _meter(peak: float, width: int = 24) -> str:
    db = 20 * math.log10(max(peak, 1e-6))
    filled = round(width * min(1.0, max(0.0, (db + 60) / 60)))
    return "█" * filled + "·" * (width - filled) + f" {db:6.1f} dBFS"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def render(fields: dict[str, Any]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("input", _meter(fields.get("in_peak", 0.0)))
    t.add_row("output", _meter(fields.get("out_peak", 0.0)))
    t.add_row("style / content / pitch / attack", f"{fields.get('style_weight', 0):g} / "
              f"{fields.get('content_weight', 0):g} / {fields.get('pitch_weight', 0):g} / "
              f"{fields.get('attack_weight', 0):g}")
    t.add_row("preset / morph", f"#{fields.get('style_index', 0)} / {fields.get('morph', 0):.2f}")
    t.add_row("mix / level", f"{fields.get('mix', 0):.2f} / {fields.get('level', 0):+.1f} dB"
              + ("   BYPASS" if fields.get("bypass") else ""))
    t.add_row("steps", f"{fields.get('steps_done', 0)} of {fields.get('steps', 0)} last block, "
              f"{fields.get('steps_per_block', 0):.1f} on average")
    t.add_row("load", f"{100 * fields.get('load', 0):.0f} % of real time")
    t.add_row("network", f"{fields.get('precision', '?')} on {fields.get('device', '?')}, "
              f"{fields.get('eval_ms', 0):.1f} ms a step")
    t.add_row("latency", f"{fields.get('latency_ms', 0):.0f} ms")
    t.add_row("underruns / overruns", f"{fields.get('underruns', 0)} / {fields.get('overruns', 0)}")
    t.add_row("headroom", f"{_ms(fields.get('headroom_ms'))} now, {_ms(fields.get('lowest_headroom_ms'))} at the least")
    return t


class StatusScreen:
    """A rich Live display on stderr; does nothing when disabled (--quiet)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._live: Live | None = None

    def __enter__(self) -> StatusScreen:
        if self.enabled:
            self._live = Live(render({}), console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def update(self, fields: dict[str, Any]) -> None:
        if self._live is not None:
            self._live.update(render(fields))

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
