"""Web chat under a flood: one address sends as fast as it can while citizens ask questions.

    python bench/flood.py [--citizens 60] [--questions 8] [--pace 3.2] [--flooders 32]
                          [--database URL]

Starts ``python -m bot serve`` (SQLite in a temporary file by default, the default rate limits,
this machine as a trusted proxy so that ``X-Forwarded-For`` gives each client its address).
Each citizen has an address and a session of its own and asks ``--questions`` questions of
``tests/data/questions_*.jsonl``, one every ``--pace`` seconds (under the 20 per minute a
session may send). Two phases in the same run:
- baseline: the citizens alone;
- flood: the same, while another process keeps ``--flooders`` requests in flight to
  ``POST /api/chat`` from one address, a new session each time (as the issue's attacker did).
Prints, per phase, the citizens' median and p99 latency and any answer that was not 200, and
for the flood its requests per second and the share answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook import free_port, p99, wait_for  # noqa: E402
from knowledge.evaluate import read_questions  # noqa: E402

FLOOD_ADDRESS = "203.0.113.66"


async def citizen(http: aiohttp.ClientSession, url: str, number: int, questions: list[str],
                  pace: float, latencies: list[float], statuses: Counter[int]) -> None:
    """One citizen: its own address and session, a question every ``pace`` seconds."""
    headers = {"X-Forwarded-For": f"10.1.{number // 250}.{number % 250 + 1}"}
    await asyncio.sleep(pace * (number % 60) / 60)  # citizens do not all start at once
    for question in questions:
        started = time.perf_counter()
        async with http.post(url + "/api/chat", json={"text": question},
                             headers=headers) as response:
            body = await response.read()
        latencies.append((time.perf_counter() - started) * 1e3)
        statuses[response.status] += 1
        if response.status == 200 and "X-Chat-Session" not in headers:
            headers["X-Chat-Session"] = json.loads(body)["session"]
        await asyncio.sleep(max(0.0, pace - (time.perf_counter() - started)))


async def phase(url: str, questions: list[str], args: argparse.Namespace
                ) -> tuple[list[float], Counter[int]]:
    """Every citizen's questions; their latencies (ms) and statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(
            citizen(http, url, n, questions[n * args.questions:(n + 1) * args.questions],
                    args.pace, latencies, statuses) for n in range(args.citizens)))
    return latencies, statuses


async def flood(url: str, seconds: float, concurrency: int) -> None:
    """The attacker (run in its own process): prints its statuses and rate as JSON."""
    statuses: Counter[int] = Counter()
    end = time.monotonic() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < end:
            try:
                async with http.post(url + "/api/chat", json={"text": "gks"},
                                     headers={"X-Forwarded-For": FLOOD_ADDRESS}) as response:
                    await response.read()
                statuses[response.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    print(json.dumps({"statuses": statuses, "seconds": time.monotonic() - started}))


def report(name: str, latencies: list[float], statuses: Counter[int]) -> None:
    """One phase's line for the citizens."""
    other = {k: v for k, v in statuses.items() if k != 200}
    print(f"{name:<28} {len(latencies):>5} questions  median {statistics.median(latencies):6.1f}"
          f" ms  p99 {p99(latencies):6.1f} ms  not 200: {other or 'none'}")


async def main() -> None:
    """Start the server; measure the citizens alone, then under the flood."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--citizens", type=int, default=60)
    parser.add_argument("--questions", type=int, default=8, help="per citizen")
    parser.add_argument("--pace", type=float, default=3.2, help="seconds between questions")
    parser.add_argument("--flooders", type=int, default=32, help="flood requests in flight")
    parser.add_argument("--database")
    parser.add_argument("--flood-worker", nargs=3, metavar=("URL", "SECONDS", "CONCURRENCY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_worker:
        url, seconds, concurrency = args.flood_worker
        await flood(url, float(seconds), int(concurrency))
        return

    questions = [q.q for path in sorted((ROOT / "tests" / "data").glob("questions_*.jsonl"))
                 for q in read_questions(path)]
    needed = args.citizens * args.questions
    questions = (questions * (needed // len(questions) + 1))[:needed]
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MOTCUA_HOST": "127.0.0.1", "MOTCUA_PORT": str(port),
               "DATABASE_URL": args.database or f"sqlite:///{folder}/bench.sqlite3",
               "MOTCUA_TRUSTED_PROXIES": "127.0.0.1", "MOTCUA_SECRET_KEY": "bench",
               "TELEGRAM_BOT_TOKEN": "", "ZALO_APP_ID": ""}
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_for(url + "/healthz")
            await phase(url, questions[:args.citizens], argparse.Namespace(  # warm-up
                citizens=args.citizens, questions=1, pace=0.0))
            latencies, statuses = await phase(url, questions, args)
            report("baseline (no flood)", latencies, statuses)
            seconds = args.questions * args.pace + 2
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--flood-worker", url, str(seconds),
                 str(args.flooders)], stdout=subprocess.PIPE, text=True)
            await asyncio.sleep(1)  # the flood is under way before the citizens start
            latencies, statuses = await phase(url, questions, args)
            out, _ = attacker.communicate(timeout=seconds + 60)
            report("with the flood", latencies, statuses)
            result = json.loads(out)
            sent = sum(result["statuses"].values())
            refused = result["statuses"].get("429", 0)
            print(f"flood from one address: {sent / result['seconds']:.0f} requests/s, "
                  f"{100 * refused / sent:.1f} % answered 429, statuses {result['statuses']}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
