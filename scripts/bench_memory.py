"""Peak memory of `mst-live transfer` against input length: bounded, not growing with the file.

Inputs are the shipped demo clip (a nylon-guitar phrase) looped to 1, 10 and 30 minutes. The
optimiser and phase passes are cut to 2 each: memory depends on the segment length and the
network, not on the number of iterations, and the full 300 would take hours at 30 minutes.
Peak memory is the child process's maximum resident set size (getrusage), measured from outside.
Writes the "memory" section of BENCHMARKS.md.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmd import ROOT, machine, write_section

from mst_live.io.files import read_mono

CACHE = ROOT / ".cache" / "bench"
MINUTES = (1, 10, 30)


def looped_input(minutes: int) -> Path:
    path = CACHE / f"demo_loop_{minutes}min.flac"
    if not path.exists():
        clip = read_mono(ROOT / "presets" / "demo.flac", 22050)
        want = minutes * 60 * 22050
        with sf.SoundFile(path, "w", samplerate=22050, channels=1) as f:
            done = 0
            while done < want:
                piece = clip[: want - done]
                f.write(piece)
                done += piece.size
    return path


def peak_of(argv: list[str]) -> tuple[float, float, str]:
    """(peak resident MB, wall seconds, last line printed) of one child process."""
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(p.stderr); print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else '')")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    took = time.perf_counter() - t0
    first, last = out.stdout.strip().splitlines()[:2]
    rc, kb = map(int, first.split())
    if rc != 0:
        raise SystemExit(f"transfer failed: {out.stderr}")
    return kb / 1024, took, last


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in MINUTES:
        src = looped_input(minutes)
        dst = CACHE / f"transfer_{minutes}min.flac"
        mb, took, line = peak_of([sys.executable, "-m", "mst_live", "transfer", str(src), "--preset", "jazz",
                                  "-o", str(dst), "--iters", "2", "--phase-iters", "2", "--quiet"])
        frames = sf.info(dst).frames
        assert frames == minutes * 60 * 22050, (frames, minutes)
        whole = minutes * 60 * 22050 * (4 + 3 * 1025 * 4 / 512)  # input + complex STFT + magnitudes, float32
        rows.append((minutes, mb, took, whole / 2**20, line))
        print(f"{minutes} min: peak {mb:.0f} MB, {took:.0f} s", flush=True)
    base = rows[0][1]
    body = [
        "## Memory: `transfer` of long inputs",
        "",
        f"`scripts/bench_memory.py` on {machine()}. `mst-live transfer IN --preset jazz --iters 2 --phase-iters 2` "
        "(full-size network: 4000 filters, n_fft 2048) on the demo clip looped to each length. Peak memory is the "
        "process's maximum resident set size, read by its parent with getrusage. Iterations are cut to 2 because "
        "memory depends on the 30 s segment and the network, not on how long each segment is optimised.",
        "",
        "| input | peak memory | above the 1-minute run | what holding it whole would add (input, STFT, magnitudes) | wall time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for minutes, mb, took, whole, _ in rows:
        body.append(f"| {minutes} min | **{mb:.0f} MB** | {mb - base:+.0f} MB | {whole:.0f} MB | {took:.0f} s |")
    said = rows[-1][4].replace(str(ROOT) + "/", "")
    body += ["", f"The output file of each run holds exactly the input's length ({said})."]
    write_section("memory", "\n".join(body))
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


if __name__ == "__main__":
    main()
