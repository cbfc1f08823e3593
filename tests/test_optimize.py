"""The budgeted L-BFGS on functions whose minima are known, and its deadline and best-point promises."""

import math

import pytest
import torch

from mst_live import optimize
from mst_live.optimize import lbfgs


def recorded(fn):
    """fg that also keeps every (loss, x) it was asked for."""
    seen = []

    def fg(x):
        x = x.detach().clone().requires_grad_(True)
        f = fn(x)
        f.backward()
        seen.append((float(f.detach()), x.detach().clone()))
        return float(f.detach()), x.grad

    return fg, seen


def test_quadratic_reaches_its_known_minimum():
    torch.manual_seed(0)
    a = torch.randn(20, 20, dtype=torch.float64)
    h = a @ a.T + 20 * torch.eye(20, dtype=torch.float64)  # well conditioned, positive definite
    b = torch.randn(20, dtype=torch.float64)
    x_star = torch.linalg.solve(h, b)
    fg, _ = recorded(lambda x: 0.5 * x @ h @ x - b @ x)
    x, evals = lbfgs(fg, torch.zeros(20, dtype=torch.float64), max_evals=60, history=10)
    assert evals <= 60
    assert torch.allclose(x, x_star, atol=1e-6), float((x - x_star).abs().max())


def test_rosenbrock_gets_to_one_one():
    fg, _ = recorded(lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)
    x, evals = lbfgs(fg, torch.tensor([-1.2, 1.0], dtype=torch.float64), max_evals=400, history=10)
    assert float((x - 1).abs().max()) < 1e-3, (x, evals)


def test_budget_is_exact_and_the_best_point_evaluated_is_returned():
    fg, seen = recorded(lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)
    for budget in (1, 2, 3, 7, 15):
        seen.clear()
        x, evals = lbfgs(fg, torch.tensor([-1.2, 1.0], dtype=torch.float64), max_evals=budget)
        assert evals == len(seen) <= budget
        best = min(f for f, _ in seen)
        f_x = next(f for f, xs in seen if torch.equal(xs, x))
        assert f_x == best


def test_nan_losses_are_never_the_answer():
    calls = []

    def fg(x):
        calls.append(1)
        if len(calls) > 1:  # every point after the start is broken
            return math.nan, torch.full_like(x, math.nan)
        return float((x * x).sum()), 2 * x

    x0 = torch.ones(3)
    x, _ = lbfgs(fg, x0, max_evals=5)
    assert torch.equal(x, x0)


class FakeClock:
    """time.perf_counter that moves only when the optimiser evaluates: deadlines without flakiness."""

    def __init__(self, step: float) -> None:
        self.now = 100.0
        self.step = step

    def perf_counter(self) -> float:
        return self.now


def test_deadline_stops_before_an_evaluation_that_would_end_late(monkeypatch):
    clock = FakeClock(0.01)
    monkeypatch.setattr(optimize, "time", clock)
    rosen = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
    inner, _ = recorded(rosen)
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)

    def fg(x):
        clock.now += clock.step  # each evaluation takes 10 ms of the fake clock
        return inner(x)

    deadline = clock.now + 0.055
    x, evals = lbfgs(fg, x0, max_evals=100, deadline=deadline, eval_seconds=0.01)
    assert evals == 5  # a sixth would end at 60 ms, after the deadline
    assert clock.now <= deadline
    assert float(rosen(x)) < float(rosen(x0))
    # a cost asked before each evaluation (an engine whose speed changes): 20 ms planned, 4 fit
    start = clock.now
    x, evals = lbfgs(fg, x0, max_evals=100, deadline=start + 0.055, eval_seconds=lambda: 0.02)
    assert evals == 4 and clock.now <= start + 0.055
    # an already passed deadline: no evaluation at all, the start comes back
    x, evals = lbfgs(fg, x0, max_evals=100, deadline=clock.now - 1, eval_seconds=0.01)
    assert evals == 0 and torch.equal(x, x0)


@pytest.mark.parametrize("budget", [0, -3])
def test_no_budget_returns_the_start(budget):
    x0 = torch.randn(5)
    x, evals = lbfgs(lambda x: (0.0, x), x0, max_evals=budget)
    assert evals == 0 and x is x0
