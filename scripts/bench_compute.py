"""The random network's cost per class of CPU: the structured network beside the dense one in each
of its precisions, natively and with every CPU path capped at AVX2 (no AVX-512, no native bfloat16,
no VNNI int8: most laptops).

Per dispatch, in a child process of its own, side by side in one run, on one thread as live runs:
- start-up: building the network (the dense one draws 45 M Gaussian weights);
- per network and precision: one forward and backward product of a 16-column block, one
  evaluation at the defaults (the engine's own timing of the whole loss, median over the clip), the
  error of features and gradient against the same network in float32, the engine's load on 10 s
  of real music, and the style gap closed and content distance on the held-out yardstick (each
  network with a preset of the same 60 s of style built on it);
- file to file, 60 s of real music, the whole `mst-live` process at its defaults, and the offline
  `transfer` of 10 s.

Run: .venv/bin/python scripts/bench_compute.py   (writes the 'compute' section of BENCHMARKS.md)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import CONTENT_TRACK, STYLE_TRACK, style_and_content
from benchmd import DISPATCHES, ROOT, machine, write_section

DENSE_PRECISIONS = ("bfloat16", "float16", "int8", "float32")


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def _product_ms(net, block, weights, repeats: int = 15) -> float:
    """One forward and one backward product at the block's size through the network (median)."""
    times = []
    for _ in range(repeats + 1):
        x = block.clone().requires_grad_(True)
        t0 = time.perf_counter()
        (net(x) * weights).sum().backward()
        times.append(time.perf_counter() - t0)
    return 1000 * _median(times[1:])


def child() -> None:
    import numpy as np
    import torch
    from yardstick import Yardstick

    from mst_live import Settings, build_preset, load_preset
    from mst_live.compute import choose, cpu_capability, native_bfloat16, runnable
    from mst_live.engine import StyleEngine
    from mst_live.features import FeatureNet

    torch.set_num_threads(1)
    s = Settings()
    work, style, content60, preset_path = style_and_content(s)
    content = content60[: 10 * s.sample_rate]
    presets = {"structured": load_preset(preset_path),
               "dense": build_preset([work / "style60.wav"], settings=Settings(network="dense"), precision="float32")}
    ys = Yardstick(s)
    g_style = ys.gram(style)
    cpu = torch.device("cpu")
    auto = choose("cpu", "auto", network="dense")
    out = {"capability": cpu_capability(), "dense_auto": auto.precision, "rows": []}
    gen = torch.Generator().manual_seed(0)
    block = torch.log1p(torch.rand(s.n_bins, 26, generator=gen) * 4)  # 10 context + 16 frames: 16 columns
    weights = torch.randn(s.n_filters, 16, generator=gen)
    runs = [("structured", "float32")] + [("dense", p) for p in ("float32", *DENSE_PRECISIONS[:-1])]
    refs: dict = {}
    for network, p in runs:
        if runnable(p, cpu) is not None:
            continue
        row: dict = {"network": network, "precision": p, "auto": network == "structured" or p == auto.precision}
        t0 = time.perf_counter()
        net = FeatureNet(presets[network].settings, precision=p)
        row["startup_s"] = time.perf_counter() - t0
        if p == "bfloat16" and not native_bfloat16(cpu):
            row["product_ms"] = _product_ms(net, block, weights, repeats=1)
            row["note"] = "no native bfloat16: the engine is not run"
            out["rows"].append(row)
            continue
        row["product_ms"] = _product_ms(net, block, weights)
        x = block.clone().requires_grad_(True)
        f = net(x)
        (f * weights).sum().backward()
        ref = refs.setdefault(network, (f.detach(), x.grad))
        row["feature_err"] = float((f.detach() - ref[0]).norm() / ref[0].norm())
        row["grad_err"] = float((x.grad - ref[1]).norm() / ref[1].norm())
        eng = StyleEngine(presets[network], net=net)
        eng.process(np.zeros(4096, np.float32))
        eng.reset()
        eng.planner.clear()
        t0 = time.perf_counter()
        y = np.concatenate([eng.process(content), eng.flush()])[eng.latency :]
        row["load"] = (time.perf_counter() - t0) / 10.0
        row["eval_ms"] = 1000 * _median(eng.planner.evals)
        row["gap"] = ys.style_gap_closed(y, content, g_style)
        row["dist"] = ys.content_distance(y, content)
        out["rows"].append(row)
        del eng, net
    cli = str(ROOT / ".venv/bin/mst-live")
    t0 = time.perf_counter()
    proc = subprocess.run([cli, "--preset", str(preset_path), "--input", str(work / "content60.wav"), "--output",
                           str(work / "compute60.wav"), "--quiet"], capture_output=True, text=True, check=True)
    out["file60_s"] = time.perf_counter() - t0
    out["file60_said"] = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    sf_clip = work / "content10.wav"
    import soundfile as sf

    sf.write(sf_clip, content, s.sample_rate)
    t0 = time.perf_counter()
    subprocess.run([cli, "transfer", str(sf_clip), "--preset", str(preset_path), "-o", str(work / "transfer10.wav"),
                    "--quiet"], capture_output=True, text=True, check=True)
    out["transfer10_s"] = time.perf_counter() - t0
    print(json.dumps(out))


def main() -> None:
    results = {}
    for name, env in DISPATCHES.items():
        proc = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                              env={**os.environ, **env})
        if proc.returncode:
            sys.exit(f"{name}: {proc.stderr}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    caps = " ".join(f"{k}={v}" for k, v in DISPATCHES["AVX2-only"].items())
    lines = [
        "## The random network: what each kind and arithmetic costs and keeps, per class of CPU",
        "",
        f"`scripts/bench_compute.py` on {machine().replace(', 2 torch threads', '')}. Each dispatch runs in its own "
        f"process on one torch thread, as live runs: native, and AVX2-only (`{caps}`), which takes away "
        "AVX-512, native bfloat16 and fbgemm's VNNI int8 kernels, as on most laptops (numba's kernels "
        "compile for the CPU they run on, whatever the caps). Full-size networks (4000 filters x width 11, "
        f"n_fft 2048); content: 10 s of `{CONTENT_TRACK}` from 20 s, style: 60 s of `{STYLE_TRACK}`, a preset "
        "built on each network; the engine at its defaults (8 steps per block).",
        "",
        "- **start-up**: building the network (the dense one draws its 45 M weights; the structured one stores none);",
        "- **product**: the network's forward and backward pass over a 16-column block (median);",
        "- **evaluation**: one loss evaluation in the engine at the defaults: features, their gradient and "
        "the whole loss (median over the clip);",
        "- **error**: features / input gradient of one block against the same network in float32;",
        "- **load**: engine time / audio time on the 10 s clip (library call, no start-up);",
        "- **style gap closed / content distance**: on the held-out yardstick network.",
        "",
        "| CPU capability | network | precision | start-up | product | evaluation | error (features / gradient) | load | "
        "style gap closed | content distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results.values():
        for row in r["rows"]:
            mark = " (default)" if row["network"] == "structured" else (" (auto)" if row["auto"] else "")
            head = f"| {r['capability']} | {row['network']}{mark} | {row['precision']} | {row['startup_s']:.2f} s | "
            if "note" in row:
                lines.append(head + f"{row['product_ms']:.1f} ms | {row['note']} | | | | |")
                continue
            lines.append(head + f"{row['product_ms']:.2f} ms | **{row['eval_ms']:.1f} ms** | "
                         f"{row['feature_err']:.1e} / {row['grad_err']:.1e} | {row['load']:.2f} | {row['gap']:.3f} | "
                         f"{row['dist']:.3f} |")
    lines += ["", "The default (the structured network), whole process, torch's default threads for a file:", "",
              "| CPU capability | file to file, 60 s | load | offline `transfer`, 10 s (300 iterations) |",
              "| --- | --- | --- | --- |"]
    for r in results.values():
        lines.append(f"| {r['capability']} | {r['file60_s']:.1f} s | **{r['file60_s'] / 60:.2f}** | "
                     f"{r['transfer10_s']:.1f} s |")
    lines += ["", "What each 60 s run printed:", ""]
    for r in results.values():
        said = "; ".join(ln.replace(str(ROOT) + "/", "") for ln in r["file60_said"])
        lines.append(f"- {r['capability']}: `{said}`")
    body = "\n".join(lines)
    write_section("compute", body)
    print(body)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        main()
