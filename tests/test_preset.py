import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf

from mst_live import PresetError, Settings, build_preset, load_preset
from mst_live.build import low_rank
from mst_live.dsp.stft import StreamingSTFT, stft
from mst_live.features import FeatureNet
from mst_live.preset import FORMAT_VERSION, resolve_preset_path


def test_round_trip(small_preset_path, small):
    p = load_preset(small_preset_path)
    assert p.settings == small
    assert p.basis.dtype == np.float16 and p.basis.shape == (small.n_filters, p.rank)
    assert p.energy_kept >= 0.9999
    assert p.sources[0][0] == "style.flac" and len(p.sources[0][1]) == 64
    net = FeatureNet(small)
    p.check_network(net.settings, net.checksum)
    again = p.save(small_preset_path.parent / "again.npz")
    q = load_preset(again)
    assert np.array_equal(q.basis, p.basis) and np.array_equal(q.eigenvalues, p.eigenvalues)
    assert q.gram_sq_norm == p.gram_sq_norm and q.sources == p.sources
    assert np.array_equal(q.bin_mean, p.bin_mean) and np.array_equal(q.bin_std, p.bin_std)
    assert p.feature_mean.shape == (small.n_filters,) and np.array_equal(q.feature_mean, p.feature_mean)
    assert q.style_target().mean is not None
    text = q.describe()
    assert "rank" in text and small.describe() in text and p.sources[0][1] in text


def test_low_rank_keeps_the_energy_asked_for():
    g = torch_gram(60, 400)
    basis, eig, sq_norm, kept = low_rank(g, 0.999)
    assert kept >= 0.999
    approx = (basis.astype(np.float64) * eig) @ basis.astype(np.float64).T
    err = np.linalg.norm(approx - g.numpy()) ** 2 / sq_norm
    assert err <= 1 - 0.999 + 1e-4


def torch_gram(c, t):
    import torch

    f = torch.relu(torch.randn(c, t, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    return f @ f.T / t


def test_streaming_stft_equals_whole():
    y = np.random.default_rng(0).standard_normal(10_001).astype(np.float32)
    whole = stft(y, n_fft=256, hop_length=64)
    s = StreamingSTFT(n_fft=256, hop_length=64)
    parts, i = [], 0
    for n in [1, 17, 500, 64, 3000, 0, 6419]:
        parts.append(s.push(y[i : i + n]))
        i += n
    assert i == y.size
    parts.append(s.flush())
    got = np.concatenate(parts, axis=1)
    assert got.shape == whole.shape
    assert np.allclose(got, whole, atol=1e-4)


def test_chunked_build_equals_whole_build(audio_dir, small):
    from mst_live.build import GramAccumulator

    net = FeatureNet(small)
    y = sf.read(audio_dir / "style.flac", dtype="float32")[0]
    logmag = np.log1p(np.abs(stft(y, n_fft=small.n_fft, hop_length=small.hop_length)))
    one = GramAccumulator(net, chunk_frames=10**9)
    one.add(logmag, final=True)
    many = GramAccumulator(net, chunk_frames=37)
    for i in range(0, logmag.shape[1], 29):
        many.add(logmag[:, i : i + 29])
    many.add(logmag[:, :0], final=True)
    assert one.n_frames == many.n_frames == logmag.shape[1] - small.width + 1
    assert np.allclose(one.gram().numpy(), many.gram().numpy(), rtol=1e-5, atol=1e-7)
    assert np.allclose(one.mean().numpy(), many.mean().numpy(), rtol=1e-5, atol=1e-7)
    import torch

    whole = net(torch.from_numpy(logmag)).double()
    assert np.allclose(one.mean().numpy(), whole.mean(dim=1).numpy(), rtol=1e-5, atol=1e-7)


def test_built_bin_statistics_are_those_of_the_style(audio_dir, small):
    y = sf.read(audio_dir / "style.flac", dtype="float32")[0]
    logmag = np.log1p(np.abs(stft(y, n_fft=small.n_fft, hop_length=small.hop_length)))
    p = build_preset([audio_dir / "style.flac"], settings=small)
    assert p.bin_mean.shape == p.bin_std.shape == (small.n_bins,)
    assert np.allclose(p.bin_mean, logmag.mean(axis=1), atol=1e-4)
    assert np.allclose(p.bin_std, logmag.std(axis=1), atol=1e-4)


def test_build_takes_folders_and_other_rates(audio_dir, small):
    p = build_preset([audio_dir], settings=small)
    names = [n for n, _ in p.sources]
    assert names == ["content.wav", "style.flac", "style_44k.ogg"]


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(dst, **arrays)
    return dst


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/mst_live_pwned_marker", "w"))


BAD = {
    "missing key": lambda src, dst: _rewrite(src, dst, eigenvalues=None),
    "extra key": lambda src, dst: _rewrite(src, dst, extra=np.zeros(3)),
    "wrong dtype": lambda src, dst: _rewrite(src, dst, basis=np.zeros((512, 3), np.float64)),
    "wrong shape": lambda src, dst: _rewrite(src, dst, basis=np.zeros((511, 3), np.float16)),
    "nan": lambda src, dst: _rewrite(src, dst, gram_sq_norm=np.float64("nan")),
    "version": lambda src, dst: _rewrite(src, dst, format_version=np.int64(FORMAT_VERSION + 1)),
    "bad settings": lambda src, dst: _rewrite(src, dst, settings_json=np.str_(json.dumps({"n_fft": 3}))),
    "not json": lambda src, dst: _rewrite(src, dst, settings_json=np.str_("{nope")),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_presets_are_refused(kind, small_preset_path, tmp_path):
    bad = BAD[kind](small_preset_path, tmp_path / f"{kind.replace(' ', '_')}.npz")
    with pytest.raises(PresetError, match=str(bad.name).replace(".", r"\.")):
        load_preset(bad)


def test_an_older_format_is_refused_with_how_to_rebuild_it(small_preset_path, tmp_path):
    """A version-1 preset (before the per-bin statistics) names its version and the command that
    rebuilds it, not the keys it lacks."""
    old = _rewrite(small_preset_path, tmp_path / "old.npz", format_version=np.int64(1), bin_mean=None, bin_std=None)
    with pytest.raises(PresetError, match=r"old\.npz: format version 1, .*mst-live preset build .*--output old\.npz"):
        load_preset(old)


def test_a_version_4_preset_loads_without_the_covariance_term(small_preset_path, tmp_path):
    old = _rewrite(small_preset_path, tmp_path / "v4.npz", format_version=np.int64(4), feature_mean=None)
    p = load_preset(old)
    assert p.feature_mean is None and p.format_version == 4 and p.style_target().mean is None
    assert "mean feature  none" in p.describe()


def test_a_version_5_preset_runs_on_the_dense_network_it_was_built_with(small_dense_preset_path, small, tmp_path):
    """Before format 6 the settings did not name the network: every such preset was built on the
    dense one, loads as dense, and fits the dense network's checksum; the structured network with
    it is one line naming both."""
    with np.load(small_dense_preset_path, allow_pickle=False) as z:
        stored = json.loads(str(z["settings_json"]))
    del stored["network"]
    old = load_preset(_rewrite(small_dense_preset_path, tmp_path / "v5.npz", format_version=np.int64(5),
                               settings_json=np.str_(json.dumps(stored))))
    assert old.settings.network == "dense" and old.format_version == 5
    dense = FeatureNet(old.settings)
    old.check_network(dense.settings, dense.checksum)
    structured = FeatureNet(small)
    with pytest.raises(PresetError, match=r"v5\.npz: built on the dense network, but the network given is structured"):
        old.check_network(structured.settings, structured.checksum)
    # from format 6 on, the kind is part of the settings: one left out is a missing setting
    with pytest.raises(PresetError, match="missing settings: network"):
        load_preset(_rewrite(small_dense_preset_path, tmp_path / "v6.npz", settings_json=np.str_(json.dumps(stored))))


@pytest.mark.parametrize("key", ["bin_mean", "bin_std", "feature_mean"])
def test_bad_statistics_are_refused(key, small_preset_path, tmp_path):
    """Each bin's statistics and the mean feature: a wrong length or a negative value names the key."""
    n = getattr(load_preset(small_preset_path), key).size
    short = _rewrite(small_preset_path, tmp_path / "short.npz", **{key: np.ones(n - 1, np.float32)})
    with pytest.raises(PresetError, match=rf"short\.npz: {key} has shape"):
        load_preset(short)
    neg = _rewrite(small_preset_path, tmp_path / "neg.npz", **{key: -np.ones(n, np.float32)})
    with pytest.raises(PresetError, match=rf"neg\.npz: {key} is negative"):
        load_preset(neg)


def test_truncated_and_garbage_files_are_refused(small_preset_path, tmp_path):
    data = small_preset_path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"\x00junk" * 100)
    (tmp_path / "text.npz").write_text("hello")
    for name in ["trunc.npz", "garbage.npz", "text.npz", "missing.npz"]:
        with pytest.raises(PresetError, match=name):
            load_preset(tmp_path / name)


def test_pickle_payload_is_never_executed(small_preset_path, tmp_path):
    import os

    marker = "/tmp/mst_live_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "evil.npz"
    with np.load(small_preset_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["basis"] = np.array([_Evil()], dtype=object)
    np.savez(evil, **arrays)
    # and a raw pickle dressed up as an npz member
    evil2 = tmp_path / "evil2.npz"
    with zipfile.ZipFile(evil2, "w") as zf:
        for k, v in arrays.items():
            if k != "basis":
                zf.writestr(k + ".npy", _npy_bytes(v))
        zf.writestr("basis.npy", pickle.dumps(_Evil()))
    for f in (evil, evil2):
        with pytest.raises(PresetError):
            load_preset(f)
    assert not os.path.exists(marker)


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_mismatched_network_is_refused(small_preset_path, small):
    p = load_preset(small_preset_path)
    other = Settings(**{**small.to_dict(), "seed": small.seed + 1})
    net = FeatureNet(other)
    with pytest.raises(PresetError, match="built for"):
        p.check_network(net.settings, net.checksum)
    with pytest.raises(PresetError, match="checksum"):
        p.check_network(small, "0" * 16)


def test_shipped_preset_names_resolve():
    p = resolve_preset_path("jazz")
    assert p.name == "jazz.npz" and p.exists()
    with pytest.raises(PresetError, match="shipped"):
        resolve_preset_path("no-such-style")


def test_shipped_presets_load_and_are_small():
    from mst_live.latency import MODES

    for mode in MODES.values():
        for name in ["jazz", "strings", "rock", "chiptune"]:
            path = resolve_preset_path(name + mode.suffix)
            p = load_preset(path)
            assert p.settings == mode.settings
            mode.check_preset(p)
            assert path.stat().st_size <= 3 * 1024 * 1024  # the palette of the style's own sound is most of it
            assert p.palette is not None and p.palette.shape[0] == p.settings.n_bins
            assert p.n_frames * p.settings.hop_length / p.settings.sample_rate > 120  # minutes of music
    with pytest.raises(PresetError, match="jazz-low, or rebuild it with mst-live preset build"):
        MODES["low"].check_preset(load_preset(resolve_preset_path("jazz")))
    with pytest.raises(PresetError, match=r"a --latency low preset .* use the shipped jazz, or rebuild it with mst-live"):
        MODES["normal"].check_preset(load_preset(resolve_preset_path("jazz-low")))


LONG_BUILD = """
import resource, sys
from mst_live import Settings, build_preset
build_preset([sys.argv[1]], settings=Settings(n_fft=512, hop_length=128, n_filters=64, width=5))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_long_input_builds_in_bounded_memory(tmp_path):
    sr = 22050
    short, long_ = tmp_path / "short.wav", tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    block = (0.1 * rng.standard_normal(sr * 10)).astype(np.float32)
    with sf.SoundFile(short, "w", sr, 1) as f:
        f.write(block)
    with sf.SoundFile(long_, "w", sr, 1) as f:  # 8 minutes, written block by block
        for _ in range(48):
            f.write(block)
    rss = {}
    for path in (short, long_):
        out = subprocess.run([sys.executable, "-c", LONG_BUILD, str(path)], capture_output=True, text=True,
                             check=True)
        rss[path.name] = int(out.stdout.split()[-1]) * 1024
    audio_bytes = sr * 480 * 4
    # Whole-file processing would hold at least the 42 MB of float32 samples (and the
    # spectrogram, twice that); streaming keeps the long build within a few MB of the short one.
    assert rss["long.wav"] - rss["short.wav"] < audio_bytes / 3, rss
