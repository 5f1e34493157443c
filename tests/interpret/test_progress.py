"""Progress reports and cancellation of the toolbox's long loops (maximize, invert, occlusion,
DeepFool, FGSM/PGD): ``progress(done, total)`` counts up to ``total``; ``should_stop`` ends the
loop with :class:`cnnvis.interpret.Cancelled`, with every hook removed."""

from __future__ import annotations

import threading

import pytest
import torch

from cnnvis import interpret


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())  # fmt: skip


def test_cancel_from_another_thread_stops_a_running_maximize(trained_demo):
    """A maximisation of 100,000 steps is stopped by an Event set from another thread once
    it has started; it raises Cancelled long before its end, and leaves no hook behind."""
    stop, started = threading.Event(), threading.Event()
    seen: list[tuple[int, int]] = []
    outcome: dict = {}

    def progress(done, total):
        seen.append((done, total))
        if done >= 3:
            started.set()

    def run():
        try:
            interpret.maximize(trained_demo, ("block3.relu", 9), shape=(1, 8, 8), steps=100_000,
                               progress=progress, should_stop=stop)  # fmt: skip
        except interpret.Cancelled as exc:
            outcome["cancelled"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(60)
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert "maximize cancelled after" in outcome["cancelled"]
    assert seen[-1][0] < 100_000 and all(t == 100_000 for _, t in seen)
    assert _hooks(trained_demo) == 0 and not trained_demo.training


@pytest.mark.parametrize(
    ("call", "total"),
    [
        (lambda m, x, **kw: interpret.maximize(m, 3, shape=(1, 8, 8), steps=7, **kw), 7),
        (lambda m, x, **kw: interpret.invert(m, x, "block2.relu", steps=5, **kw), 5),
        # 7 x 7 positions of a 2x2 window with stride 1, in batches of 16
        (lambda m, x, **kw: interpret.occlusion(m, x, window=2, batch_size=16, **kw), 49),
        (lambda m, x, **kw: interpret.adversarial(m, x, "pgd", steps=6, **kw), 6),
        (lambda m, x, **kw: interpret.adversarial(m, x, "fgsm", **kw), 1),
        (lambda m, x, **kw: interpret.deepfool(m, x, max_iter=9, **kw), 9),
    ],
)
def test_progress_counts_to_the_total_and_a_stop_cancels(trained_demo, digits, call, total):
    x = digits[2][:1]
    seen: list[tuple[int, int]] = []
    call(trained_demo, x, progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and seen[-1] == (total, total)
    assert all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(interpret.Cancelled, match="cancelled after 0 of"):
        call(trained_demo, x, should_stop=lambda: True)
    assert _hooks(trained_demo) == 0


def test_a_set_event_cancels_before_the_first_step(trained_demo):
    stop = threading.Event()
    stop.set()
    with pytest.raises(interpret.Cancelled):
        interpret.occlusion(trained_demo, torch.zeros(1, 8, 8), window=2, should_stop=stop)
