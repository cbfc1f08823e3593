"""L-BFGS with a hard budget: a fixed number of loss evaluations, or a wall-clock deadline.

torch.optim.LBFGS cannot be stopped between evaluations without leaving the parameters at an
untested trial point. This one always returns the best point it has evaluated, so a
deadline can cut it short at any evaluation and the block still improves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

LossAndGrad = Callable[[torch.Tensor], tuple[float, torch.Tensor]]


def lbfgs(
    fg: LossAndGrad,
    x0: torch.Tensor,
    *,
    max_evals: int,
    history: int = 8,
    deadline: float | None = None,
    eval_seconds: float | Callable[[], float] = 0.0,
) -> tuple[torch.Tensor, int]:
    """Minimise; returns (the best point evaluated, evaluations used). Stops before an evaluation
    that would end after ``deadline`` (time.perf_counter seconds), given ``eval_seconds`` per
    evaluation (a number, or a function asked before each evaluation, for a caller whose costs
    change while it runs). A non-finite loss is never taken as best."""
    if max_evals <= 0:
        return x0, 0

    def time_left() -> bool:
        if deadline is None:
            return True
        cost = eval_seconds() if callable(eval_seconds) else eval_seconds
        return time.perf_counter() + cost <= deadline

    if not time_left():
        return x0, 0
    x = x0
    f, g = fg(x)
    evals = 1
    best_f, best_x = (f if math.isfinite(f) else math.inf), x
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    rho_hist: list[float] = []
    while evals < max_evals and time_left():
        # two-loop recursion for d = -H g
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist), strict=True):
            a = rho * float((s * q).sum())
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= float((s_hist[-1] * y_hist[-1]).sum() / (y_hist[-1] * y_hist[-1]).sum())
        else:
            q *= min(1.0, 1.0 / max(float(g.abs().sum()), 1e-12)) * g.numel() ** 0.5
        for (s, y, rho), a in zip(zip(s_hist, y_hist, rho_hist, strict=True), reversed(alphas), strict=True):
            b = rho * float((y * q).sum())
            q += (a - b) * s
        d = -q
        gtd = float((g * d).sum())
        if not gtd < 0:
            break
        t = 1.0
        accepted = False
        while evals < max_evals and time_left():
            x_new = x + t * d
            f_new, g_new = fg(x_new)
            evals += 1
            if f_new < best_f:  # a trial point the line search rejects may still be the best seen
                best_f, best_x = f_new, x_new
            if f_new <= f + 1e-4 * t * gtd:
                accepted = True
                break
            t *= 0.3
        if not accepted:
            break
        s, y = x_new - x, g_new - g
        sy = float((s * y).sum())
        if sy > 1e-10:
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0)
                y_hist.pop(0)
                rho_hist.pop(0)
        x, f, g = x_new, f_new, g_new
    return best_x, evals
