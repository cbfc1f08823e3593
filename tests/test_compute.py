"""The network's arithmetic: what `auto` picks, the packed products' accuracy, and the AVX2-only class of CPU.

The AVX2-only checks run in a child process with every CPU path capped (``ATEN_CPU_CAPABILITY=avx2``,
``ONEDNN_MAX_CPU_ISA=AVX2``, ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``,
as `make test` runs the whole suite): the CPU class of most laptops, where torch has no native
bfloat16 and bfloat16 products run about 25x slower than float32 ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mst_live.compute import choose, native_bfloat16, packed_weights_available, pick_device, runnable
from mst_live.errors import ParameterError
from mst_live.features import FeatureNet

from .test_cli import assert_one_line_error, run

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
needs_packed = pytest.mark.skipif(not packed_weights_available(), reason="this torch has no fbgemm (not an x86 CPU)")


def run_child(code: str, env: dict[str, str]) -> dict:
    """Run ``code`` in a fresh interpreter with ``env`` added; it prints one JSON line last."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_packed
@pytest.mark.parametrize(("precision", "tol", "grad_tol"), [("float16", 1e-3, 1e-2), ("int8", 2e-2, 0.12)])
def test_packed_products_are_the_float32_network_within_their_rounding(small_dense, precision, tol, grad_tol):
    """Features and their input gradient, as the optimiser uses them, against the float32 network.
    The gradient's error is the larger: units within the product's error of the ReLU kink switch.
    Measured here (features / gradient): float16 2e-4 / 3e-3, int8 8e-3 / 6.6e-2, and bfloat16,
    for scale, 2.9e-3 / 2.5e-2."""
    small = small_dense
    ref, net = FeatureNet(small), FeatureNet(small, precision=precision)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(small.n_bins, 40, generator=gen)
    target = torch.randn(small.n_filters, 40 - small.width + 1, generator=gen)
    grads = []
    for n in (ref, net):
        a = x.clone().requires_grad_(True)
        f = n(a)
        (f * target).sum().backward()
        grads.append((f.detach(), a.grad))
    (f_ref, g_ref), (f_net, g_net) = grads
    assert f_net.dtype == torch.float32 and f_net.shape == f_ref.shape
    assert float((f_net - f_ref).norm() / f_ref.norm()) < tol
    assert float((g_net - g_ref).norm() / g_ref.norm()) < grad_tol
    assert float((f_net - f_ref).norm() / f_ref.norm()) > 0  # really another arithmetic


def test_devices_and_precisions_that_cannot_run_are_refused():
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA device"):
            pick_device("cuda")
        assert "CPU only" in runnable("float16", torch.device("cuda"))
        assert pick_device("auto").type in ("cpu", "mps")
    if not torch.backends.mps.is_available():
        with pytest.raises(ParameterError, match="no Apple MPS device"):
            pick_device("mps")
    with pytest.raises(ParameterError, match="precision='double'"):
        choose("cpu", "double")
    # the structured network has one arithmetic: the dense network's precisions are refused by name
    with pytest.raises(ParameterError, match=r"precision=.int8.*structured network runs in float32"):
        choose("cpu", "int8", network="structured")
    assert choose("cpu", "auto", network="structured").precision == "float32"


def test_auto_picks_bfloat16_only_where_it_is_native():
    c = choose("cpu", "auto", network="dense")
    assert c.device.type == "cpu"
    assert c.precision in ("bfloat16", "int8", "float16", "float32")
    assert (c.precision == "bfloat16") <= native_bfloat16(torch.device("cpu"))
    assert c.why and c.precision in c.describe()


def test_avx2_only_dispatch_reproduces_the_slow_bfloat16_and_auto_avoids_it():
    got = run_child("""
        import json, torch
        from mst_live.compute import choose, cpu_capability, measure_product, native_bfloat16
        torch.set_num_threads(2)
        c = choose("cpu", "auto", network="dense")
        print(json.dumps({"cap": cpu_capability(), "native": native_bfloat16(torch.device("cpu")),
                          "auto": c.precision, "why": c.why,
                          "bf16": measure_product("bfloat16", torch.device("cpu"), repeats=2),
                          "f32": measure_product("float32", torch.device("cpu"), repeats=2)}))
    """, AVX2_ONLY)
    assert got["cap"].startswith("AVX2") and not got["native"], got
    assert got["auto"] != "bfloat16", got
    assert "no native bfloat16" in got["why"] or "only path" in got["why"], got
    # the class of CPU the dispatch stands for: bfloat16 far slower than float32, not a little
    assert got["bf16"] > 3 * got["f32"], got


def test_auto_evaluation_under_avx2_only_is_at_most_3x_float32():
    """One evaluation of the full-size network (features and their input gradient, a block at the
    defaults) in the precision auto picks, against float32, in the same process: a ratio, so it
    holds on a noisy machine."""
    got = run_child("""
        import json, time, torch
        from mst_live import Settings
        from mst_live.compute import choose
        from mst_live.features import FeatureNet
        torch.set_num_threads(2)
        s = Settings(network="dense")
        chosen = choose("cpu", "auto", network="dense")
        nets = {"float32": FeatureNet(s), "auto": FeatureNet(s, precision=chosen.precision)}
        x = torch.rand(s.n_bins, 16 + s.width - 1, generator=torch.Generator().manual_seed(0))
        def once(net):
            a = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            net(a).square().sum().backward()
            return time.perf_counter() - t0
        times = {k: [] for k in nets}
        for _ in range(7):  # interleaved, so that a busy moment hits both
            for k, net in nets.items():
                times[k].append(once(net))
        med = {k: sorted(v[1:])[len(v[1:]) // 2] for k, v in times.items()}
        print(json.dumps({"precision": chosen.precision, **med}))
    """, AVX2_ONLY)
    assert got["precision"] != "bfloat16", got
    assert got["auto"] <= 3 * got["float32"], got


def test_an_explicit_slow_bfloat16_runs_with_one_warning_line(small_dense_preset_path, audio_dir, tmp_path):
    wav = tmp_path / "bf16.wav"
    out = run("transfer", audio_dir / "content.wav", "--preset", small_dense_preset_path, "-o", wav, "--iters", "2",
              "--phase-iters", "2", "--compute-device", "cpu", "--precision", "bfloat16", "--quiet",
              env={**os.environ, **AVX2_ONLY})
    assert out.returncode == 0, out.stderr
    warns = [ln for ln in out.stderr.splitlines() if "warning" in ln]
    assert len(warns) == 1, out.stderr
    assert "--precision=bfloat16" in warns[0] and "slower" in warns[0], warns
    assert "network: bfloat16 on cpu" in out.stdout and wav.exists()


def test_a_dense_precision_on_a_structured_preset_is_one_line(small_preset_path, audio_dir, tmp_path):
    assert_one_line_error(run("transfer", audio_dir / "content.wav", "--preset", small_preset_path, "-o",
                              tmp_path / "x.wav", "--iters", "1", "--precision", "int8"), "structured network")


def test_every_network_command_says_what_it_chose(small_preset_path, audio_dir, tmp_path, cli):
    run = cli
    out = run("transfer", audio_dir / "content.wav", "--preset", small_preset_path, "-o", tmp_path / "t.wav",
              "--iters", "1", "--phase-iters", "1", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "network: " in out.stdout and " on cpu (" in out.stdout, out.stdout
    out = run("preset", "build", audio_dir / "style.flac", "-o", tmp_path / "p.npz", "--quiet", "--precision", "float32",
              "--n-fft", "512", "--hop", "128", "--filters", "64", "--width", "5")
    assert out.returncode == 0, out.stderr
    assert "network: float32 on cpu (asked for)" in out.stdout
    events = tmp_path / "ev.jsonl"
    out = run("--preset", small_preset_path, "--input", audio_dir / "content.wav", "--output", tmp_path / "r.wav",
              "--quiet", "--events", events)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(ln) for ln in events.read_text().splitlines()]
    start = next(e for e in lines if e["type"] == "start")
    status = [e for e in lines if e["type"] == "status"][-1]
    assert start["precision"] == status["precision"] != "auto"
    assert start["device"] == status["device"] == "cpu" and start["network"].startswith(start["precision"])
    # a file render keeps torch's threads (one a core); --threads sets them, and the line and the event say so
    n = start["threads"]
    assert n >= 1 and f", {n} thread{'s' if n > 1 else ''}" in out.stdout, out.stdout
    out = run("--preset", small_preset_path, "--input", audio_dir / "content.wav", "--output", tmp_path / "r.wav",
              "--quiet", "--events", events, "--threads", "1")
    assert out.returncode == 0 and ", 1 thread" in out.stdout, out.stdout
    assert_one_line_error(run("transfer", audio_dir / "content.wav", "--preset", small_preset_path, "-o",
                              tmp_path / "x.wav", "--compute-device", "tpu"), "tpu")


@pytest.mark.parametrize("planted", [{"bfloat16": 3e-3, "int8": 2e-3, "float16": 1e-3, "float32": 4e-3},
                                     {"bfloat16": 1e-3, "int8": 2e-3, "float16": 5e-3, "float32": 4e-3},
                                     {"bfloat16": 9e-3, "int8": 8e-3, "float16": 7e-3, "float32": 1e-3}])
def test_auto_takes_the_fastest_path_it_measured(monkeypatch, planted):
    """With planted measurements: on a CPU the fastest of the paths it runs natively, and on a
    CUDA GPU the faster of bfloat16 and float32 from Ampere on (compute capability 8.0), float32
    alone before it, whatever bfloat16 measures."""
    import mst_live.compute as compute

    monkeypatch.setattr(compute, "measure_product", lambda p, dev, **kw: planted[p])
    monkeypatch.setattr(compute, "packed_weights_available", lambda: True)
    for native in (True, False):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda n=native: n)
        cands = [p for p in planted if native or p != "bfloat16"]
        c = choose("cpu", "auto", network="dense")
        assert c.precision == min(cands, key=planted.get), (native, c)
        assert f"{c.precision} {1000 * planted[c.precision]:.2f} ms" in c.why
    cuda = torch.device("cuda")
    monkeypatch.setattr(compute, "pick_device", lambda d, **kw: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 6))
    c = choose("cuda", "auto", network="dense")
    assert c.precision == min(("bfloat16", "float32"), key=planted.get) and "CUDA 8.6" in c.why
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 5))
    c = choose("cuda", "auto", network="dense")
    assert c.precision == "float32" and "no native bfloat16" not in c.why and "the only path" in c.why
