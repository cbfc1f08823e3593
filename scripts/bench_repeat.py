"""Run the live and MIDI tests (real JACK server, real MIDI port) many times in a row under the
AVX2 cap, as `make test` runs them, and write how often each passed to BENCHMARKS.md: a test
that passes once can still fail one run in ten.

Usage: .venv/bin/python scripts/bench_repeat.py [RUNS]   (10 by default)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmd import AVX2_ONLY, ROOT, machine, write_section

FILES = ["tests/test_live_jack.py", "tests/test_midi_jack.py"]


def one_run(report: Path) -> tuple[dict[str, str], float]:
    """Each test's outcome in one pytest run ('passed', 'failed', 'error' or 'skipped'), and its seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *FILES],
                   cwd=ROOT, env={**os.environ, **AVX2_ONLY}, capture_output=True, text=True)
    took = time.perf_counter() - t0
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{Path(case.get('file') or case.get('classname', '').replace('.', '/')).stem}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
    return outcomes, took


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    passed, seen, seconds = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            outcomes, took = one_run(Path(tmp) / f"run{i}.xml")
            seconds.append(took)
            for name, outcome in outcomes.items():
                seen[name] += 1
                passed[name] += outcome == "passed"
            print(f"run {i + 1}/{runs}: {sum(o == 'passed' for o in outcomes.values())} of {len(outcomes)} passed "
                  f"({took:.0f} s)", flush=True)
    rows = [f"| `{name}` | {passed[name]} of {seen[name]} |" for name in sorted(seen)]
    seconds.sort()
    body = (
        f"## Live and MIDI tests, run after run\n\n`scripts/bench_repeat.py {runs}` on {machine()}: "
        f"`{' '.join(FILES)}` run {runs} times in a row with every torch CPU path capped at AVX2 "
        f"({', '.join(f'{k}={v}' for k, v in AVX2_ONLY.items())}), each run a fresh JACK server; a run took "
        f"{seconds[len(seconds) // 2]:.0f} s (median).\n\n"
        "| test | runs passed |\n| --- | --- |\n" + "\n".join(rows) + "\n"
    )
    write_section("repeat", body)
    print(body)


if __name__ == "__main__":
    main()
