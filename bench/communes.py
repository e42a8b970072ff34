"""Memory and start-up time of many communes in one process, sharing one knowledge base.

    python bench/communes.py [--communes 126] [--separate 3]

Loads the bundled knowledge base and builds its assistant (the baseline), then derives one
assistant per commune with ``Assistant.for_commune`` (what ``serve`` does with
``MOTCUA_COMMUNES``), each answering one question so its own caches exist. For comparison it
builds ``--separate`` assistants of their own (what sharing avoids) and extrapolates their cost
to all the communes. The communes are copies of the bundled profile under other slugs and
names: the profile's size, not its content, is what costs memory.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.answer import Assistant  # noqa: E402
from knowledge.loader import load_knowledge  # noqa: E402

QUESTION = "làm giấy khai sinh cho con cần giấy tờ gì"


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communes", type=int, default=126)
    parser.add_argument("--separate", type=int, default=3)
    args = parser.parse_args()

    before = rss_mb()
    start = time.perf_counter()
    kb = load_knowledge()
    shared = Assistant(kb)
    shared.ask(QUESTION)
    base_s, base_mb = time.perf_counter() - start, rss_mb() - before
    print(f"bundled knowledge base and its assistant: {base_s:.2f} s, {base_mb:.0f} MB")

    profiles = [kb.commune.model_copy(update={"slug": f"xa-{i}", "name": f"Xã Thử {i}"})
                for i in range(args.communes)]
    before, start = rss_mb(), time.perf_counter()
    derived = [shared.for_commune(p) for p in profiles]
    for assistant in derived:
        assistant.ask(QUESTION)
    shared_s, shared_mb = time.perf_counter() - start, rss_mb() - before
    print(f"{args.communes} communes sharing it: +{shared_s:.2f} s, +{shared_mb:.0f} MB "
          f"({shared_mb / args.communes * 1e3:.0f} kB a commune)")

    before, start = rss_mb(), time.perf_counter()
    separate = [Assistant(replace(kb, commune=p)) for p in profiles[:args.separate]]
    for assistant in separate:
        assistant.ask(QUESTION)
    each_s = (time.perf_counter() - start) / args.separate
    each_mb = (rss_mb() - before) / args.separate
    print(f"an assistant of its own: {each_s:.2f} s, {each_mb:.0f} MB each "
          f"(average of {args.separate}); for {args.communes} communes about "
          f"{each_s * args.communes:.0f} s and {each_mb * args.communes / 1e3:.1f} GB")
    print(f"sharing saves {each_mb * args.communes / max(shared_mb, 1):.0f}x the memory "
          f"of separate assistants")
    del derived, separate


if __name__ == "__main__":
    main()
