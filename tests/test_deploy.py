"""deploy/run.py, the production topology without Docker: migrations once, two instances on one
PostgreSQL database, Caddy with HTTPS in front; driven with real requests through the proxy."""

import asyncio
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import POSTGRES, admin

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("caddy") is None,
                                reason="Caddy is not installed (.ci/run installs Debian's caddy)")


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the OS's choice)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Topology:
    process: subprocess.Popen[str]
    lines: "queue.Queue[str]"
    output: list[str]
    url: str
    instances: list[str]
    tls: ssl.SSLContext

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The first output line starting with ``prefix``; fails with the output so far."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {prefix!r} line: {''.join(self.output)}")
            if line.startswith(prefix):
                return line


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    name = f"motcua_deploy_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    https, http = free_ports(2)
    first = next(p for p in (free_ports(1)[0] for _ in range(100))
                 if {p, p + 1}.isdisjoint({https, http}) and p < 65535 and _free(p + 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTCUA_", "TELEGRAM_",
                                                                      "ZALO_", "DATABASE_"))}
    env["MOTCUA_SECRET_KEY"] = "deploy-test-" + uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "run.py"), "--database", f"{POSTGRES}/{name}",
         "--state", str(tmp_path / "state"), "--first-port", str(first),
         "--https-port", str(https), "--http-port", str(http), "--instance-header"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    root = tmp_path / "state" / "caddy-data" / "caddy" / "pki" / "authorities" / "local"
    tls = ssl.create_default_context()
    running = Topology(process, lines, output, f"https://localhost:{https}",
                       [f"127.0.0.1:{first}", f"127.0.0.1:{first + 1}"], tls)
    try:
        running.wait_for("ready:", timeout=240)
        tls.load_verify_locations(root / "root.crt")  # Caddy's internal CA, as a client would
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def healthcheck(instance: str) -> int:
    """The exit status of the Dockerfile's HEALTHCHECK command run against ``instance``."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    command = json.loads(re.search(r"^HEALTHCHECK .* CMD (\[.*\])$", dockerfile, re.M)[1])
    assert command[0] == "python"
    env = {**os.environ, "MOTCUA_PORT": instance.rpartition(":")[2]}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                          timeout=30).returncode


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any
                   ) -> tuple[int, dict[str, Any], str]:
    async with http.request(kwargs.pop("method", "GET"), url, **kwargs) as response:
        return (response.status, await response.json(),
                response.headers.get("X-Motcua-Instance", ""))


async def test_requests_through_the_proxy_reach_both_instances(topology: Topology) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=topology.tls),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        seen = set()
        for _ in range(4):
            status, health, instance = await get_json(http, f"{topology.url}/healthz")
            assert status == 200 and health["status"] == "ok" and health["procedures"] > 50
            seen.add(instance)
        assert seen == set(topology.instances)

        # A web chat conversation whose messages alternate between the instances keeps its
        # session (one secret key) and its topic (one database).
        session, answered_by = "", []
        for text, start in (("làm giấy khai sinh cho bé cần gì", "Làm giấy khai sinh"),
                            ("còn phí?", "Lệ phí — Làm giấy khai sinh"),
                            ("bao lâu thì xong", "Thời gian giải quyết — Làm giấy khai sinh")):
            headers = {"X-Chat-Session": session} if session else {}
            status, answer, instance = await get_json(
                http, f"{topology.url}/api/chat", method="POST", json={"text": text},
                headers=headers)
            assert status == 200, answer
            session = answer.get("session", session)
            assert start in answer["replies"][0]["text"], answer
            answered_by.append(instance)
        assert set(answered_by) == set(topology.instances)

        # A staff member's console requests stay with one instance (an upload waits there).
        console = set()
        for _ in range(4):
            async with http.get(f"{topology.url}/console/login") as page:
                assert page.status == 200
                console.add(page.headers["X-Motcua-Instance"])
        assert len(console) == 1

        async with http.get(f"{topology.url}/") as page:  # the web chat page, over HTTPS
            assert page.status == 200 and "<html" in (await page.text()).lower()
            assert page.headers["Content-Security-Policy"]

    assert healthcheck(topology.instances[0]) == 0  # the image's HEALTHCHECK, on an instance
    topology.process.send_signal(signal.SIGTERM)
    assert topology.process.wait(90) == 0, "".join(topology.output)
    assert healthcheck(topology.instances[0]) != 0
    for name in ("caddy", "motcua-1", "motcua-2"):
        assert f"{name}: exited with 0\n" in topology.output
    for address in [*topology.instances, topology.url.rpartition("/")[2]]:
        assert _free(int(address.rpartition(":")[2])), f"{address} still listening"

