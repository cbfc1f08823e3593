"""What an optimiser step and the rest of a block cost, so that a deadline costs steps, not audio."""

from __future__ import annotations

from collections import deque


def _median(d: deque[float]) -> float:
    return sorted(d)[len(d) // 2] if d else 0.0


class StepPlanner:
    """Keeps the recent cost of one loss evaluation and of the rest of a block (features for the
    memory, phase, output), and plans with them."""

    def __init__(self) -> None:
        self.evals: deque[float] = deque(maxlen=64)
        self.post: deque[float] = deque(maxlen=16)
        self.last_eval = 0.0
        self.eval_seconds = 0.0  # running mean of one evaluation, for the status
        self.memory_pass = 0.0  # what a block without optimiser steps pays for the style memory
        self.eval_per_forward = 0.0  # one evaluation over one forward pass of a block, measured at warm-up

    def clear(self) -> None:
        """Forget the timings (what a first, cold pass measured), but not the running mean."""
        self.evals.clear()
        self.post.clear()

    def record_eval(self, seconds: float) -> None:
        self.evals.append(seconds)
        self.last_eval = seconds
        self.eval_seconds = seconds if self.eval_seconds == 0 else 0.8 * self.eval_seconds + 0.2 * seconds

    def record_post(self, seconds: float) -> None:
        self.post.append(seconds)

    def record_memory_pass(self, seconds: float) -> None:
        """What one forward pass of a block costs, timed at warm-up beside the evaluations."""
        self.memory_pass = seconds
        typical = _median(self.evals)
        self.eval_per_forward = typical / seconds if typical > 0 and seconds > 0 else 0.0

    def record_dry_block(self, forward_seconds: float) -> None:
        """A block that got no steps times no evaluation, so the timings of a load that has passed
        would keep every later block dry; the forward pass it made for the style memory is fresh
        evidence of the network's speed, and the evaluation cost it implies replaces them."""
        if self.eval_per_forward > 0 and forward_seconds > 0:
            self.evals.clear()
            self.record_eval(forward_seconds * self.eval_per_forward)

    def block_cost(self) -> float:
        """The typical cost of a block beyond its optimiser steps."""
        return _median(self.post)

    def planned_cost(self) -> float:
        """Seconds one more evaluation plus the rest of the block may take: the typical costs
        (medians) at the speed the last evaluation ran, plus room for that speed to halve at once,
        so that a load which arrives mid-block costs steps, not audio."""
        typical_eval, typical_post = _median(self.evals), _median(self.post)
        slow = max(1.0, self.last_eval / typical_eval) if typical_eval > 0 else 1.0
        return (slow + 1.0) * (typical_eval + typical_post)
