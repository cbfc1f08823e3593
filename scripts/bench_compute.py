"""The network's arithmetic on two classes of CPU: this machine's native dispatch, and an AVX2-only
one (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: no native bfloat16, like most laptops).

Per dispatch, in a child process of its own, side by side in one run:
- what ``--precision auto`` picks, and why;
- per precision: one evaluation at the defaults (features and input gradient of a 7 + 1-frame block
  with the loss's padding, the whole loss: the engine's own timing, median), the error of features
  and gradient against float32 on the same block, the engine's load on 10 s of real music, and
  the style gap closed and content distance on the held-out yardstick (what the gradient error
  does to L-BFGS);
- file to file, 60 s of real music, the whole `mst-live` process at its defaults (auto).

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

PRECISIONS = ("bfloat16", "float16", "int8", "float32")


def child() -> None:
    import numpy as np
    import torch

    from mst_live import Settings, load_preset
    from mst_live.compute import choose, cpu_capability, measure_product, native_bfloat16, runnable
    from mst_live.engine import StyleEngine
    from mst_live.features import FeatureNet
    from mst_live.quality import Yardstick

    s = Settings()
    work, style, content60, preset_path = style_and_content(s)
    content = content60[: 10 * s.sample_rate]
    preset = load_preset(preset_path)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    cpu = torch.device("cpu")
    t0 = time.perf_counter()
    auto = choose("cpu", "auto")
    out = {"capability": cpu_capability(), "auto": auto.precision, "why": auto.why,
           "choose_s": time.perf_counter() - t0, "rows": {}}
    gen = torch.Generator().manual_seed(0)
    block = torch.log1p(torch.rand(s.n_bins, 26, generator=gen) * 4)  # 10 context + 8 + 8 padding frames
    weights = torch.randn(s.n_filters, 16, generator=gen)
    ref = None
    for p in ("float32", *[q for q in PRECISIONS if q != "float32"]):
        if runnable(p, cpu) is not None:
            continue
        row: dict = {"product_ms": 1000 * measure_product(p, cpu, repeats=3 if native_bfloat16(cpu) or p != "bfloat16" else 1)}
        if p == "bfloat16" and not native_bfloat16(cpu):
            row["note"] = "no native bfloat16: the engine is not run"
            out["rows"][p] = row
            continue
        net = FeatureNet(s, precision=p)
        x = block.clone().requires_grad_(True)
        f = net(x)
        (f * weights).sum().backward()
        if ref is None:
            ref = (f.detach(), x.grad)
        row["feature_err"] = float((f.detach() - ref[0]).norm() / ref[0].norm())
        row["grad_err"] = float((x.grad - ref[1]).norm() / ref[1].norm())
        eng = StyleEngine(preset, net=net)
        eng.process(np.zeros(4096, np.float32))
        eng.reset()
        eng.planner.clear()
        t0 = time.perf_counter()
        y = np.concatenate([eng.process(content), eng.flush()])[eng.latency :]
        row["load"] = (time.perf_counter() - t0) / 10.0
        evals = sorted(eng.planner.evals)
        row["eval_ms"] = 1000 * evals[len(evals) // 2]
        row["steps"] = eng.stats.evaluations / max(eng.stats.blocks, 1)
        row["gap"] = ys.style_gap_closed(y, content, g_style)
        row["dist"] = ys.content_distance(y, content)
        out["rows"][p] = row
        del eng, net
    wav = work / "compute60.wav"
    t0 = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv/bin/mst-live"), "--preset", str(preset_path), "--input",
                           str(work / "content60.wav"), "--output", str(wav), "--quiet"], capture_output=True, text=True,
                          check=True)
    out["file60_s"] = time.perf_counter() - t0
    out["file60_said"] = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    print(json.dumps(out))


def main() -> None:
    results = {}
    for name, env in DISPATCHES.items():
        proc = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                              env={**os.environ, **env})
        if proc.returncode:
            sys.exit(f"{name}: {proc.stderr}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = [
        "## Network arithmetic: what each precision costs and keeps, per class of CPU",
        "",
        f"`scripts/bench_compute.py` on {machine()}. Each dispatch runs in its own process: native, and "
        "AVX2-only (`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`), which takes torch's native bfloat16 "
        "away as on most laptops. fbgemm's packed float16 and int8 products choose their kernels by the CPU "
        "themselves, which the dispatch does not cap. Full-size network (4000 filters x width 11, n_fft 2048); "
        f"content: 10 s of `{CONTENT_TRACK}` from 20 s, style: the preset of 60 s of `{STYLE_TRACK}`, "
        "the engine at its defaults (8 steps per block).",
        "",
        "- **product**: one forward and one backward product of a 1536-filter slice of the network's shape "
        "(what `auto` measures at start, median);",
        "- **evaluation**: one loss evaluation in the engine at the defaults, features, their gradient and "
        "the whole loss (median over the clip);",
        "- **error**: features / input gradient of one block against float32's;",
        "- **load**: engine time / audio time on the 10 s clip (library call, no start-up);",
        "- **style gap closed / content distance**: on the held-out yardstick network.",
        "",
        "| CPU capability | precision | product | evaluation | error (features / gradient) | load | "
        "style gap closed | content distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results.values():
        for p, row in r["rows"].items():
            mark = " (auto)" if p == r["auto"] else ""
            if "note" in row:
                lines.append(f"| {r['capability']} | {p}{mark} | {row['product_ms']:.1f} ms | {row['note']} | | | | |")
                continue
            lines.append(
                f"| {r['capability']} | {p}{mark} | {row['product_ms']:.2f} ms | **{row['eval_ms']:.1f} ms** | "
                f"{row['feature_err']:.1e} / {row['grad_err']:.1e} | {row['load']:.2f} | {row['gap']:.3f} | {row['dist']:.3f} |")
    lines += ["", "| CPU capability | auto picks | why | time to choose | file to file, 60 s, whole process | load |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in results.values():
        lines.append(f"| {r['capability']} | **{r['auto']}** | {r['why']} | {r['choose_s']:.2f} s | "
                     f"{r['file60_s']:.1f} s | **{r['file60_s'] / 60:.2f}** |")
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
