"""Shared fixtures: small settings so the suite runs fast, and generated audio files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mst_live import Settings

SR = 22050


@pytest.fixture(scope="session")
def small() -> Settings:
    return Settings(n_fft=512, hop_length=128, n_filters=512, width=5, seed=3)


@pytest.fixture(scope="session")
def small_dense(small) -> Settings:
    """The same analysis on the dense network (Gaussian weights, the precisions to choose from)."""
    return Settings(**{**small.to_dict(), "network": "dense"})


def melody(seconds: float, sr: int = SR, seed: int = 0, *, harmonics: int = 1, amp: float = 0.4) -> np.ndarray:
    """A plucked melody: the 'content' a performer might play. One harmonic is a sine; eight,
    at 1/k each, a bright plucked instrument."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    note = int(0.25 * sr)
    t = np.arange(note) / sr
    for start in range(0, out.size - note, note):
        f = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1) if k * f < sr / 2)
        out[start : start + note] += (amp * tone * np.exp(-6 * t)).astype(np.float32)
    return out


def harmonic_melody(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    return melody(seconds, sr, seed, harmonics=8, amp=0.2)


def own_style_distance(preset, y: np.ndarray) -> float:
    """‖G(y) − G_style‖ on the network a preset was built for: whether audio that came out of
    the whole chain (optimiser, phase reconstruction, overlap-add) is nearer the style."""
    import torch
    from yardstick import network_features

    from mst_live import FeatureNet
    from mst_live.losses import gram

    f = network_features(y, FeatureNet(preset.settings))
    t = preset.style_target(dtype=torch.float64)
    return float(torch.linalg.norm(gram(f) - t.factor @ t.factor.T))


def buzzy(seconds: float, sr: int = SR, seed: int = 1) -> np.ndarray:
    """A bright, noisy, rhythmic 'style': square chords with noise bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    sq = np.sign(np.sin(2 * np.pi * 110 * t)) + np.sign(np.sin(2 * np.pi * 165 * t))
    gate = (np.sin(2 * np.pi * 4 * t) > 0).astype(np.float64)
    noise = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.6)
    return (0.2 * sq * gate + 0.15 * noise).astype(np.float32)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("audio")
    sf.write(d / "content.wav", melody(3.0), SR)
    sf.write(d / "style.flac", 0.3 * buzzy(12.0), SR)
    sf.write(d / "style_44k.ogg", buzzy(4.0, seed=2)[: 4 * SR].repeat(2), 44100)
    return d


@pytest.fixture(scope="session")
def small_preset_path(audio_dir, small, tmp_path_factory):
    from mst_live import build_preset

    p = build_preset([audio_dir / "style.flac"], settings=small)
    return p.save(tmp_path_factory.mktemp("presets") / "buzzy.npz")


@pytest.fixture(scope="session")
def small_dense_preset_path(audio_dir, small_dense, tmp_path_factory):
    from mst_live import build_preset

    p = build_preset([audio_dir / "style.flac"], settings=small_dense, precision="float32")
    return p.save(tmp_path_factory.mktemp("presets") / "buzzy-dense.npz")


@pytest.fixture(scope="session")
def jack_server():
    """A real JACK server (dummy backend) for the live and MIDI tests."""
    import os

    from jackrig import JackServer

    with JackServer(f"mst{os.getpid()}", rate=48000) as server:
        yield server.name


@pytest.fixture
def cli(capsys):
    """``mst-live ARGS`` run in this process, where the subprocess is not the point: a
    CompletedProcess with its exit status and what it printed. What `main` sets for the whole
    process (signal handlers, the warning hook, torch's threads) is put back after."""
    import signal
    import subprocess
    import warnings

    import torch

    from mst_live.cli import main

    def run(*argv: object) -> subprocess.CompletedProcess:
        saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), torch.get_num_threads()
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # each run says its warnings, as a new process would
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's own errors
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                signal.signal(signal.SIGTERM, saved[0])
                signal.signal(signal.SIGINT, saved[1])
                torch.set_num_threads(saved[2])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(argv), code, out, err)

    return run
