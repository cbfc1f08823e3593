import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from .conftest import melody

CLI = [sys.executable, "-m", "mst_live"]


def run(*args, **kw):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("preset", "transfer", "demo"):
        assert cmd in out.stdout


@pytest.fixture(scope="module")
def bad_audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "garbage.wav").write_bytes(b"RIFF\x00\x00not really audio" * 20)
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 22050)
    return d


@pytest.mark.parametrize(("name", "needle"), [
    ("missing.wav", "no such file"), ("garbage.wav", "not a readable audio file"), ("empty.wav", "no audio"),
])
def test_bad_audio_gets_one_clear_line(bad_audio, small_preset_path, tmp_path, name, needle, cli):
    path = bad_audio / name
    assert_one_line_error(cli("transfer", path, "--preset", small_preset_path, "-o", tmp_path / "o.wav"),
                          name, needle)
    assert_one_line_error(cli("preset", "build", path, "-o", tmp_path / "p.npz", "--quiet"), name, needle)


def test_a_bad_input_is_one_line_from_the_installed_command(bad_audio, small_preset_path, tmp_path):
    """The entry point itself, in its own process: one line on stderr, no traceback."""
    assert_one_line_error(run("transfer", bad_audio / "garbage.wav", "--preset", small_preset_path, "-o",
                              tmp_path / "o.wav"), "garbage.wav", "not a readable audio file")


def test_bad_preset_and_arguments_get_one_clear_line(audio_dir, tmp_path, cli):
    run = cli
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert_one_line_error(run("preset", "info", tmp_path / "bad.npz"), "bad.npz")
    assert_one_line_error(run("transfer", audio_dir / "content.wav", "--preset", "nonesuch", "-o", tmp_path / "o.wav"),
                          "nonesuch")
    assert_one_line_error(run("preset", "build", audio_dir / "style.flac", "-o", tmp_path / "x.txt"), ".npz")
    assert_one_line_error(run("preset", "build", audio_dir / "style.flac", "-o", tmp_path / "p.npz", "--n-fft", "3"),
                          "n_fft")
    assert_one_line_error(run("transfer", audio_dir / "content.wav", "--preset", "jazz", "-o", tmp_path / "no/o.wav"),
                          "does not exist")
    assert_one_line_error(run("transfer", audio_dir / "content.wav", "--preset", "jazz", "-o", tmp_path / "o.wav", "--bogus"),
                          "--bogus")


def test_build_info_and_transfer_end_to_end(audio_dir, tmp_path, cli):
    preset = tmp_path / "mine.npz"
    out = run("preset", "build", audio_dir / "style.flac", "-o", preset, "--quiet",
              "--n-fft", "512", "--hop", "128", "--filters", "96", "--width", "5")
    assert out.returncode == 0, out.stderr
    info = cli("preset", "info", preset)
    assert info.returncode == 0 and "96 filters" in info.stdout and "style.flac" in info.stdout
    wav, png = tmp_path / "out.wav", tmp_path / "out.png"
    out = run("transfer", audio_dir / "content.wav", "--preset", preset, "-o", wav, "--iters", "10",
              "--phase-iters", "8", "--picture", png, "--quiet")
    assert out.returncode == 0, out.stderr
    y, sr = sf.read(wav)
    assert sr == 22050 and y.size == 3 * 22050 and np.all(np.isfinite(y))
    assert png.stat().st_size > 10_000


def _cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_interrupted_transfer_leaves_a_valid_file(small_preset_path, tmp_path):
    content = tmp_path / "long.wav"
    sf.write(content, melody(300.0), 22050)  # ten 30 s segments: far longer than the wait below
    wav = tmp_path / "partial.wav"
    proc = subprocess.Popen([*CLI, "transfer", content, "--preset", small_preset_path, "-o", wav,
                             "--iters", "100000", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "network" in proc.stdout.readline()  # the network is chosen: the first segment is read next
    start = _cpu_seconds(proc.pid)
    while _cpu_seconds(proc.pid) < start + 2.0 and proc.poll() is None:  # and its optimisation under way,
        time.sleep(0.05)  # counted in the work done, not in wall time: a busy machine stretches the latter
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in out
    y, sr = sf.read(wav)
    assert sr == 22050 and y.size > 0 and np.all(np.isfinite(y))
    assert os.path.getsize(wav) > 1000


@pytest.mark.parametrize("mode", [[], ["--offline"]])
def test_resynth_rebuilds_the_phase(audio_dir, tmp_path, mode):
    wav = tmp_path / "re.wav"
    out = run("resynth", audio_dir / "content.wav", "-o", wav, "--n-fft", "512", "--hop", "128", "--iters", "8", *mode)
    assert out.returncode == 0, out.stderr
    assert "spectral convergence" in out.stdout
    sc = float(out.stdout.split("spectral convergence")[1].split("dB")[0])
    assert sc < -12, out.stdout
    y, sr = sf.read(wav)
    x, _ = sf.read(audio_dir / "content.wav")
    assert sr == 22050 and y.size == x.size and np.all(np.isfinite(y))


def test_resynth_bad_arguments(audio_dir, tmp_path, cli):
    run = cli
    assert_one_line_error(run("resynth", audio_dir / "nope.wav", "-o", tmp_path / "x.wav"), "nope.wav")
    assert_one_line_error(run("resynth", audio_dir / "content.wav", "-o", tmp_path / "x.wav", "--look-ahead", "-2"),
                          "look_ahead")


def test_file_to_file_is_latency_compensated(small_preset_path, audio_dir, tmp_path):
    wav = tmp_path / "aligned.wav"
    out = run("--preset", small_preset_path, "--input", audio_dir / "content.wav", "--output", wav,
              "--style-weight", "0", "--quiet", "--compute-device", "cpu", "--precision", "float32")
    assert out.returncode == 0, out.stderr
    y, sr = sf.read(wav, dtype="float32")
    x, _ = sf.read(audio_dir / "content.wav", dtype="float32")
    assert sr == 22050 and y.size == x.size
    assert np.max(np.abs(y - x)) < 1e-3 * np.max(np.abs(x))


def test_a_preset_without_a_palette_plays_with_one_note(small_preset_path, audio_dir, tmp_path):
    """An older preset (format 2, no palette of its own sound) still plays, at the top of the knob
    too, and one line says what it lacks and how to get it."""
    with np.load(small_preset_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in ("palette", "palette_age", "palette_level")}
    arrays["format_version"] = np.int64(2)
    np.savez(tmp_path / "older.npz", **arrays)
    out = run("--preset", tmp_path / "older.npz", "--input", audio_dir / "content.wav", "--output", tmp_path / "o.wav",
              "--style-weight", "10", "--quiet", "--compute-device", "cpu", "--precision", "float32")
    assert out.returncode == 0, out.stderr
    notes = [ln for ln in out.stderr.splitlines() if "palette" in ln]
    assert len(notes) == 1 and "older.npz has no palette" in notes[0] and "mst-live preset build" in notes[0]
    assert sf.info(str(tmp_path / "o.wav")).frames == sf.info(str(audio_dir / "content.wav")).frames


def test_killed_render_leaves_a_valid_file(small_preset_path, tmp_path):
    content = tmp_path / "long.wav"
    sf.write(content, melody(120.0), 22050)
    wav = tmp_path / "partial.flac"
    events = tmp_path / "ev.jsonl"
    proc = subprocess.Popen([*CLI, "--preset", small_preset_path, "--input", content, "--output", wav, "--quiet",
                             "--realtime", "--events", events], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (events.exists() and events.read_text().count('"status"') >= 2):  # rendering, and saying so
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    y, sr = sf.read(wav)
    assert sr == 22050 and 0 < y.size < 120 * 22050 and np.all(np.isfinite(y))
    assert events.read_text().count('"status"') >= 2


def test_renamed_options_keep_their_old_spelling_and_say_the_new_one(capsys):
    """--device (the network's, not an audio device) is --compute-device and --blocksize (the
    audio device's buffer, not the STFT block) --device-blocksize; the old names still work for a
    release, with one line naming the new one, and --help shows only the new."""
    from mst_live.cli import build_parser

    args = build_parser().parse_args(["--compute-device", "cpu", "--device-blocksize", "128"])
    assert (args.live_device, args.blocksize) == ("cpu", 128) and capsys.readouterr().err == ""
    args = build_parser().parse_args(["--device", "cpu", "--blocksize", "128"])
    assert (args.live_device, args.blocksize) == ("cpu", 128)
    assert capsys.readouterr().err.splitlines() == [
        "mst-live: --device is now --compute-device (the old name goes in the next release)",
        "mst-live: --blocksize is now --device-blocksize (the old name goes in the next release)"]
    args = build_parser().parse_args(["preset", "build", "x.wav", "-o", "p.npz", "--device", "cpu"])
    assert args.device == "cpu" and "--compute-device" in capsys.readouterr().err
    text = build_parser().format_help()
    assert "--compute-device" in text and "--device-blocksize" in text
    assert "--device " not in text and "--blocksize" not in text
