"""Brute force against status lookup through the web chat, as an attacker with free user ids
and many addresses would try it.

    python bench/bruteforce.py [--seconds 30] [--addresses 100] [--database URL]

Starts ``python -m bot serve`` on 127.0.0.1 (SQLite in a temporary file by default) with one
real application, whose owner looks it up once (proving ownership on their chat session).
Then, for ``--seconds``, attackers guess its second factor: each guess from a new chat session
(a new user id) and one of ``--addresses`` loopback addresses (127.0.0.0/8 is all loopback),
half with a whole phone number, half with 4 digits. Meanwhile the owner looks the application
up again from their session. Prints what the attackers got (guesses answered, checked,
refused, rate-limited, right), what the owner got, and the limits' arithmetic: the most
guesses an attacker can have checked per code per year and the chance that one is right.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook import free_port, wait_for  # noqa: E402
from handlers.status import (  # noqa: E402
    CODE_FAILURES,
    COMMUNE_WEAK_FAILURES,
    DAILY_FAILURES,
    MONTH,
    WEAK_FAILURES,
    WINDOW,
)

CODE = "000.00.19.H26-261201-0007"
PHONE = "0912345678"
EXPORT = ("Mã hồ sơ,Mã thủ tục,Tên thủ tục,Người nộp,Số điện thoại,Hình thức nộp,"
          "Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ngày trả kết quả\n"
          f"{CODE},1.001193,,Nguyễn Văn A,{PHONE},Trực tuyến,01/12/2026 09:15,,Đang xử lý,\n")
# Vietnamese mobile numbers: 0 + a network prefix (about 45 in use) + 7 digits. An attacker
# who knows nothing else faces 4.5e8 numbers; SPACE assumes they narrowed it tenfold.
SPACE = 10**8


def kind(answer: str) -> str:
    """What a lookup answer says, in a word."""
    if "Trạng thái" in answer:
        return "right"
    if "quá nhiều lần" in answer or "nhập đầy đủ" in answer:
        return "refused"
    if "Không tìm thấy" in answer:
        return "checked"
    return "other"


async def lookup(http: aiohttp.ClientSession, url: str, phone: str, session: str = ""
                 ) -> tuple[str, str]:
    """One lookup (code, then phone) on a chat session; (what it said, the session)."""
    said = "other"
    for text in (f"tra cứu hồ sơ {CODE}", phone):
        headers = {"X-Chat-Session": session} if session else {}
        async with http.post(url, json={"text": text}, headers=headers) as response:
            if response.status == 429:
                return "rate-limited", session
            answer = await response.json()
        session = answer.get("session", session)
        said = kind(" ".join(r["text"] for r in answer["replies"]))
    return said, session


async def attack(url: str, address: str, until: float, seen: Counter[str], seed: int) -> None:
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        while time.monotonic() < until:
            guess = f"09{rng.randrange(10**8):08d}" if rng.random() < 0.5 \
                else f"{rng.randrange(10**4):04d}"
            said, _ = await lookup(http, url, guess)
            seen[said] += 1


async def run(args: argparse.Namespace, database: str) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database, "MOTCUA_PORT": str(port),
           "MOTCUA_SECRET_KEY": "bench-secret-key"}
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8") as export:
        export.write(EXPORT)
        export.flush()
        subprocess.run([sys.executable, "-m", "bot", "applications", "import", export.name],
                       cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                              stderr=subprocess.DEVNULL)
    try:
        await wait_for(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/api/chat"
        owner_connector = aiohttp.TCPConnector(local_addr=("127.0.0.250", 0))
        async with aiohttp.ClientSession(connector=owner_connector) as owner:
            proved, session = await lookup(owner, url, PHONE)
            seen: Counter[str] = Counter()
            until = time.monotonic() + args.seconds
            attackers = [asyncio.create_task(attack(
                url, f"127.0.{1 + n // 250}.{1 + n % 250}", until, seen, n))
                for n in range(args.addresses)]
            owner_during: Counter[str] = Counter()
            while time.monotonic() < until:
                await asyncio.sleep(args.seconds / 5)
                owner_during[(await lookup(owner, url, PHONE, session))[0]] += 1
            await asyncio.gather(*attackers)
            newcomer = (await lookup(owner, url, PHONE))[0]
    finally:
        server.terminate()
        server.wait()
    print(f"{args.seconds:.0f} s, {args.addresses} addresses, a new user id per guess")
    print(f"attackers: {sum(seen.values())} guesses — checked {seen['checked']}, "
          f"refused {seen['refused']}, rate-limited {seen['rate-limited']}, "
          f"right {seen['right']}")
    print(f"owner (proved before): first lookup {proved}; during the attack "
          f"{dict(owner_during)}; the same owner on a new session after it: {newcomer}")
    # The limits' arithmetic: whole numbers are checked at most DAILY_FAILURES times a day
    # per address (and CODE_FAILURES per WINDOW from everyone); 4 digits WEAK_FAILURES times
    # a MONTH per code (and COMMUNE_WEAK_FAILURES a day in the commune).
    windows_per_day = 24 * 3600 / WINDOW.total_seconds()
    whole_per_year = min(args.addresses * DAILY_FAILURES, CODE_FAILURES * windows_per_day) * 365
    weak_per_year = WEAK_FAILURES * 365 / MONTH.days
    chance = whole_per_year / SPACE + weak_per_year / 10**4
    print(f"guesses checked per code per year at most: {whole_per_year:,.0f} whole numbers "
          f"(of {SPACE:.0e}) + {weak_per_year:.0f} on 4 digits (of 1e4; at most "
          f"{COMMUNE_WEAK_FAILURES} a day in the whole commune)")
    print(f"chance of guessing one code's second factor in a year: {chance:.2%}")
    print(f"longest lock-out of an owner by others: {WINDOW.total_seconds() / 60:.0f} minutes "
          "at a time (the code lock; it spares sessions that proved ownership and is not "
          "extended by refused attempts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--addresses", type=int, default=100)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, args.database or f"sqlite:///{tmp}/brute.sqlite3"))


if __name__ == "__main__":
    main()
