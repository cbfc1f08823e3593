"""The tracked text speaks of the project only: no words of how it is developed, no local paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the words themselves are joined from pieces, so that this file passes its own search
DEVELOPMENT = re.compile("|".join(["stop [0-9]", "issue [0-9]", "done" + "-when", "sess" + "ion"]), re.IGNORECASE)
ALLOWED = ('scope="session"',)  # pytest's fixture scope
# an absolute path into a checkout: the checkout's own folder, or any absolute path that reaches
# into the project's benchmark and cache folders
LOCAL_PATH = re.compile(r"(?<![\w.])/(?:[\w.-]+/)+\.(?:cache|venv)/")


def tracked_text() -> dict[str, str]:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    out = {}
    for name in names.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path.suffix in (".npz", ".flac", ".ogg", ".png", ".wav"):
            continue
        try:
            out[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return out


def test_no_words_of_how_the_project_is_developed():
    found = []
    for name, text in tracked_text().items():
        for n, line in enumerate(text.splitlines(), 1):
            cleaned = line
            for ok in ALLOWED:
                cleaned = cleaned.replace(ok, "")
            if DEVELOPMENT.search(cleaned):
                found.append(f"{name}:{n}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_no_local_paths():
    own = str(ROOT) + "/"
    found = [f"{name}: {m.group(0) if m else own}" for name, text in tracked_text().items()
             for m in [LOCAL_PATH.search(text)] if m or own in text]
    assert not found, "\n".join(found)
    checkout = "/home/me/mst-live/"  # joined below, so that this file does not hold such a path itself
    assert LOCAL_PATH.search(f"done: {checkout}.cache/bench/x.wav") and not LOCAL_PATH.search("done: .cache/bench/x.wav")


README = ROOT / "README.md"


def test_readme_is_short_and_has_no_history():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    found = re.findall(r"(?i)\b(?:was|were|before|the first version|no longer|used to|instead of)\b", text)
    assert not found, found


def test_readme_start_options_table_is_the_code():
    """The start-only options' defaults as the command line has them."""
    from mst_live.cli import build_parser
    from mst_live.latency import MODES

    args = build_parser().parse_args([])
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(--[a-z-]+)` \| ([^|]+?) \|", README.read_text(), re.M)}
    assert rows["--follow"] == f"{args.follow:g}"
    assert rows["--phase"] == args.phase and rows["--latency"] == args.latency
    assert rows["--block-frames"] == f"{MODES['normal'].block_frames} ({MODES['low'].block_frames} low)"
    assert rows["--compute-device"] == args.live_device and rows["--precision"] == args.precision
