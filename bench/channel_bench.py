"""Benchmarks of the chat channels' reply rendering (see run.py).

plan    a reply of 5,000 chunks (250 KB) streamed into a ReplyPlan with
        Telegram's limits and budgets on a fake clock, every step carried
        out at once, to its final messages; vs the least any renderer must
        do: build the same text and cut the final text into messages once
"""

from __future__ import annotations

import time

from bridge.channels import reply_plan as rp
from bridge.channels.reply_split import split_reply

LINE = ("word " * 10)[:49] + "\n"


def _baseline(chunks: int) -> float:
    t0 = time.perf_counter()
    text = ""
    held = []
    for _ in range(chunks):
        text += LINE
        held.append(text)  # the plan keeps a reference too: the same copies
        held.pop()
    split_reply(text, rp.TELEGRAM.max_length, utf16=rp.TELEGRAM.utf16)
    return time.perf_counter() - t0


def _plan(chunks: int) -> float:
    t0 = time.perf_counter()
    plan = rp.ReplyPlan(rp.TELEGRAM, budget=rp.Budget(30.0, 30.0))
    now, ids, text = 0.0, 0, ""

    def steps(until_done: bool) -> None:
        nonlocal now, ids
        while True:
            step = plan.poll(now)
            if isinstance(step, rp.Done):
                return
            if isinstance(step, rp.Wait):
                if not until_done:
                    return
                now = step.until if step.until is not None else now + 1.0
            elif isinstance(step, rp.Post):
                ids += 1
                plan.report(rp.Ok(ids), now)
            elif not isinstance(step, rp.GiveUp):
                plan.report(rp.Ok(), now)

    for _ in range(chunks):
        text += LINE
        now += 0.001
        plan.stream(text, now)
        steps(False)
    plan.finish(text, now)
    steps(True)
    assert "".join(m.text for m in plan.messages).count("word") == text.count("word")
    return time.perf_counter() - t0


def bench_plan(rounds: int, chunks: int = 5000) -> tuple[float, float]:
    """(baseline, plan) seconds: medians of alternating rounds."""
    base, ours = [], []
    for _ in range(rounds):
        base.append(_baseline(chunks))
        ours.append(_plan(chunks))
    base.sort()
    ours.sort()
    return base[len(base) // 2], ours[len(ours) // 2]
