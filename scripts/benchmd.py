"""Write one benchmark script's section of BENCHMARKS.md, leaving the other sections alone."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# every CPU path torch takes capped at AVX2, as on most laptops: its own kernels and oneDNN's (no
# native bfloat16), fbgemm's packed products (no AVX512-VNNI int8) and MKL's
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
DISPATCHES = {"native": {}, "AVX2-only": AVX2_ONLY}  # the environments a speed benchmark runs under


def machine() -> str:
    from mst_live.compute import cpu_capability

    return (f"{platform.processor() or platform.machine()} (CPU capability {cpu_capability()}), "
            f"{torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def write_section(name: str, body: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    header = "# Benchmarks\n\nEach section is written by the script it names; rerun it to refresh.\n"
    text = path.read_text() if path.exists() else header
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
