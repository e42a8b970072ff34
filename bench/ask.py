"""Benchmark of the answering core: load time, memory, per-question latency.

    python bench/ask.py [--rounds N] [--portal FILE]

Runs on one core (CPU affinity) and prints medians and p99 for the bundled knowledge base
and for the bundled base plus the full national catalog, with the naive rapidfuzz WRatio
baseline over the same names measured in the same run (the ratio is what to compare).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from knowledge.answer import Assistant  # noqa: E402
from knowledge.evaluate import read_questions  # noqa: E402
from knowledge.loader import load_knowledge  # noqa: E402
from knowledge.portal import read_portal  # noqa: E402
from knowledge.text import fold  # noqa: E402

DEFAULT_PORTAL = ROOT.parent / "shared" / "data" / "dichvucong" / "procedures-all.jsonl.gz"


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def latencies(fn: Callable[[str], object], questions: list[str], rounds: int) -> list[float]:
    """Seconds per call of ``fn`` over every question, ``rounds`` times."""
    out = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            fn(q)
            out.append(time.perf_counter() - start)
    return out


def summary(name: str, values: list[float]) -> float:
    """Print median and p99 in milliseconds; return the median."""
    values = sorted(values)
    median = statistics.median(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    print(f"  {name:<38} median {median * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")
    return median


def run(label: str, assistant: Assistant, questions: list[str], rounds: int) -> None:
    """Latency of our ``ask`` against WRatio over the official names, same questions."""
    names = [fold(p.name) for p in assistant.kb.procedures.values()]
    print(f"{label}: {len(names)} procedures")
    for q in questions[:50]:  # warm caches once
        assistant.ask(q)
    ours = summary("ask (match + compose)", latencies(assistant.ask, questions, rounds))

    def wratio(q: str) -> object:
        return process.extractOne(fold(q), names, scorer=fuzz.WRatio)

    base_rounds = max(1, rounds // 3)
    base = summary("baseline WRatio over names", latencies(wratio, questions, base_rounds))
    print(f"  speed-up over baseline (median ratio)  {base / ours:7.1f}x")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--portal", type=Path, default=DEFAULT_PORTAL)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    questions = [q.q for name in ("questions_dev.jsonl", "questions_heldout.jsonl")
                 for q in read_questions(ROOT / "tests" / "data" / name)]
    print(f"{len(questions)} questions x {args.rounds} rounds, one core")
    before = rss_mb()
    start = time.perf_counter()
    bundled = Assistant(load_knowledge())
    print(f"load bundled: {time.perf_counter() - start:.3f} s, "
          f"memory {rss_mb():.0f} MB (+{rss_mb() - before:.0f} MB)")
    run("bundled", bundled, questions, args.rounds)
    if not args.portal.exists():
        print(f"full catalog skipped: {args.portal} not found")
        return
    start = time.perf_counter()
    imported = read_portal(args.portal).procedures
    full = Assistant(load_knowledge(imported=imported))
    print(f"load bundled + {len(imported)} portal records: {time.perf_counter() - start:.3f} s, "
          f"memory {rss_mb():.0f} MB, peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    run("bundled + national catalog", full, questions, args.rounds)


if __name__ == "__main__":
    main()
