"""What the headless-browser tests share: Debian's chromium, its flags, the playwright driver,
and the server started as deployed (``python -m bot serve``).

The ``playwright`` package drives Debian's ``chromium`` (``.ci/run`` installs it) through its
bundled driver, with no browser download.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def _chromium() -> str | None:
    """Debian's chromium, installed with apt-get when missing and possible."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run("apt-get update -qq && apt-get install -y -qq chromium", shell=True,
                   capture_output=True, timeout=900, check=False)
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        pytest.skip("Debian's chromium is not installed and could not be installed "
                    "(apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(log_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``python -m bot serve`` on a free port of 127.0.0.1 with ``env`` over this process's
    environment; yields its base URL once ``/healthz`` answers, stops it afterwards."""
    port = free_port()
    full = {**os.environ, **env, "MOTCUA_HOST": "127.0.0.1", "MOTCUA_PORT": str(port)}
    log = log_path.open("w")
    process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=full,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail("the server stopped:\n" + log_path.read_text())
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("no /healthz after 90 s:\n" + log_path.read_text())
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
