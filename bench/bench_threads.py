"""analyze on the threads the app runs it on, as ratios measured in one run (issue 25).

    .venv/bin/python bench/bench_threads.py [--repeats 21] [--weights bundled] [--threads N]

The app's main thread never runs torch: Streamlit runs each rerun of a page in a new
ScriptRunner thread. torch's CPU ops run on OpenMP (libgomp) teams, one per thread that calls
them, kept as long as that thread lives. So the other benches, which run everything on the main
thread, could miss a cost of the app's threads. As in the app, every case here runs in a thread
of its own, and the main thread runs no torch. All cores by default, as the app uses them. Rows:

1. the first analyze on a new thread (as a rerun runs it: Streamlit starts a thread for it) / a
   second analyze on that thread;
2. analyze while a second thread that has run torch is alive and idle (a second session's rerun,
   waiting for the model's lock) / the same analyze once that thread has ended;
3. a new thread's start-up cost apart from analyze: ten in-place elementwise ops on 2**20 floats
   (large enough for torch to run each on the thread's OpenMP team, which it starts for the first;
   in place, so no allocation is timed) on a new thread / the same ten again on that thread.

Rows 1 and 3 vary much from run to run (row 1: 1.2x to 2.6x at 2 threads, 1.1x to 2.2x at 1, in
the runs of issue 25's notes); row 2 does not (2.0x to 2.4x at 2 threads, 1.0x to 1.1x at 1).

Every repeat runs each row's calls on a new thread, timed inside it (starting a thread is not counted).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from ratios import ratio, report

import gnet
from gnet.data.samples import sample_images

T = TypeVar("T")


def _in_new_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run on a thread started for it, as Streamlit starts one per rerun."""
    out: list[T] = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join()
    return out[0]


def _idle_torch_thread(call: Callable[[], object]) -> tuple[threading.Thread, threading.Event]:
    """A thread that has run ``call`` (so it has its OpenMP team) and now waits, alive, until its event is set."""
    ready, release = threading.Event(), threading.Event()

    def body() -> None:
        call()
        ready.set()
        release.wait()

    worker = threading.Thread(target=body)
    worker.start()
    ready.wait()
    return worker, release


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--weights", default="bundled")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch's threads (default: all cores)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)  # a setting: it starts no OpenMP team on the main thread
    # The main thread runs no torch, as in the app's server: even loading runs on a thread that then ends.
    loaded = _in_new_thread(lambda: gnet.load(args.weights, "cpu"))
    x = _in_new_thread(lambda: loaded.preprocess(sample_images()[-1].path))

    def analyze() -> None:
        gnet.analyze(loaded, x)

    def timed() -> float:
        start = time.perf_counter()
        analyze()
        return time.perf_counter() - start

    def repeat() -> dict[str, float]:
        first, again = timed(), timed()
        other, release = _idle_torch_thread(analyze)
        try:
            alive = timed()
        finally:
            release.set()
            other.join()
        return {"first call on a new thread": first, "second call on it": again,
                "second torch thread alive": alive, "second thread ended": timed()}

    ones = _in_new_thread(lambda: torch.ones(1 << 20))

    def elementwise() -> dict[str, float]:
        spent = []
        for _ in range(2):
            start = time.perf_counter()
            for _ in range(10):
                ones.add_(1.0)
            spent.append(time.perf_counter() - start)
        return {"10 ops on a new thread": spent[0], "the 10 again": spent[1]}

    print(f"{gnet.describe_device(loaded.device)}, torch {torch.__version__}, {args.weights} weights "
          f"({loaded.card.input_size} px), {args.repeats} repeats, {args.threads} torch threads, none on the main thread")
    for _ in range(2):  # warm-up
        _in_new_thread(repeat)
    runs = [_in_new_thread(repeat) | _in_new_thread(elementwise) for _ in range(args.repeats)]
    times = {name: [run[name] for run in runs] for name in runs[0]}
    report(times, scale=1e3, unit="ms")
    ratio(times, "first call on a new thread", "second call on it")
    ratio(times, "second torch thread alive", "second thread ended")
    ratio(times, "10 ops on a new thread", "the 10 again")


if __name__ == "__main__":
    main()
