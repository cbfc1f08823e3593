"""What each MIDI control does: CC rules (channel, controller, parameter, range, curve).

A mapping file is TOML, one ``[[cc]]`` table per rule:

    [[cc]]
    cc = 1                  # controller number, 0..127
    channel = 1             # 1..16; leave out for any channel
    param = "style_weight"  # a live parameter (mst-live --help lists them)
    min = 0.0
    max = 10.0
    curve = "log"           # linear | log | exp

and optionally ``[program] select_preset = true`` (program change n picks the n-th preset given).
Errors name the file and the line of the rule at fault.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParameterError
from ..params import PARAMS

CURVES = ("linear", "log", "exp")
LOG_FLOOR = 0.01  # a log curve's lowest non-zero value, as a fraction of max


@dataclass(frozen=True)
class CCRule:
    cc: int
    param: str
    lo: float
    hi: float
    curve: str = "linear"
    channel: int | None = None  # 0..15 internally; None = any

    def value(self, midi_value: int) -> float:
        """Map 0..127 onto the range. A log curve maps 0 to exactly ``lo`` (style 0 = content alone)."""
        x = max(0, min(127, int(midi_value))) / 127.0
        if self.curve == "linear":
            v = self.lo + (self.hi - self.lo) * x
        elif self.curve == "exp":
            v = self.lo + (self.hi - self.lo) * x * x
        else:
            if x == 0.0:
                return self.lo
            top = self.hi - self.lo
            v = self.lo + top * math.exp(math.log(LOG_FLOOR) * (1.0 - x))
        if PARAMS[self.param].kind != "float":
            return float(round(v))
        return v


@dataclass
class Mapping:
    rules: list[CCRule] = field(default_factory=list)
    program_selects_preset: bool = True

    def lookup(self, channel: int, cc: int) -> list[CCRule]:
        return [r for r in self.rules if r.cc == cc and (r.channel is None or r.channel == channel)]


def default_mapping(*, morph: bool = False) -> Mapping:
    """Works with any plain controller: mod wheel = style, expression = dry/wet, volume = level."""
    rules = [
        CCRule(cc=1, param="style_weight", lo=0.0, hi=10.0, curve="log"),
        CCRule(cc=11, param="mix", lo=0.0, hi=1.0),
        CCRule(cc=7, param="level", lo=-40.0, hi=6.0),
    ]
    if morph:
        rules.append(CCRule(cc=2, param="morph", lo=0.0, hi=1.0))
    return Mapping(rules=rules)


def _rule_lines(text: str) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*cc\s*\]\]", line)]


def load_mapping(path: str | os.PathLike) -> Mapping:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"{p}: no such mapping file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{p}: cannot read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{p}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"cc", "program"})
    if unknown:
        raise ParameterError(f"{p}: unknown section(s) {', '.join(unknown)} (expected [[cc]] and [program])")
    lines = _rule_lines(text)
    rules = []
    raw_rules = data.get("cc", [])
    if not isinstance(raw_rules, list):
        raise ParameterError(f"{p}: 'cc' must be a list of [[cc]] tables")
    for i, raw in enumerate(raw_rules):
        where = f"{p}, line {lines[i] if i < len(lines) else '?'}"
        rules.append(_rule(raw, where))
    program = data.get("program", {})
    select = program.get("select_preset", True) if isinstance(program, dict) else True
    if not isinstance(select, bool):
        raise ParameterError(f"{p}: [program] select_preset must be true or false")
    return Mapping(rules=rules, program_selects_preset=select)


def _rule(raw: object, where: str) -> CCRule:
    if not isinstance(raw, dict):
        raise ParameterError(f"{where}: a [[cc]] rule must be a table")
    extra = sorted(set(raw) - {"cc", "channel", "param", "min", "max", "curve"})
    if extra:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(extra)}")
    cc = raw.get("cc")
    if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 127:
        raise ParameterError(f"{where}: cc = {cc!r} must be a controller number 0..127")
    param = raw.get("param")
    if param not in PARAMS:
        raise ParameterError(f"{where}: param = {param!r} is not a live parameter ({', '.join(PARAMS)})")
    lo_b, hi_b = PARAMS[param].lo, PARAMS[param].hi
    lo = raw.get("min", lo_b)
    hi = raw.get("max", hi_b)
    for key, v in (("min", lo), ("max", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo_b <= v <= hi_b:
            raise ParameterError(f"{where}: {key} = {v!r} is outside {param}'s range {lo_b:g}..{hi_b:g}")
    curve = raw.get("curve", "linear")
    if curve not in CURVES:
        raise ParameterError(f"{where}: curve = {curve!r} must be one of {', '.join(CURVES)}")
    channel = raw.get("channel")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16):
        raise ParameterError(f"{where}: channel = {channel!r} must be 1..16 (or left out for any)")
    return CCRule(cc=cc, param=param, lo=float(lo), hi=float(hi), curve=curve,
                  channel=None if channel is None else channel - 1)


def dump_mapping(mapping: Mapping) -> str:
    """TOML text for a mapping (what `mst-live midi learn` writes)."""
    out = ["# mst-live MIDI mapping: one [[cc]] table per control", ""]
    for r in mapping.rules:
        out.append("[[cc]]")
        out.append(f"cc = {r.cc}")
        if r.channel is not None:
            out.append(f"channel = {r.channel + 1}")
        out.append(f'param = "{r.param}"')
        out.append(f"min = {r.lo!r}")
        out.append(f"max = {r.hi!r}")
        out.append(f'curve = "{r.curve}"')
        out.append("")
    out += ["[program]", f"select_preset = {'true' if mapping.program_selects_preset else 'false'}", ""]
    return "\n".join(out)
