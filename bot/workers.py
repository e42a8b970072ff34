"""Several server processes behind one port: ``python -m bot serve --workers N``.

The parent migrates the database once, binds the port and starts N children (``python -m bot
serve`` again) that inherit the listening socket and take connections from it in turn. It
starts a child that dies again (waiting longer after each failed start, giving up after
``MAX_FAILED_STARTS`` in a row), and on SIGTERM or SIGINT stops them all and waits for them.

What the children share: the database (PostgreSQL only: the outbox, the jobs' runs, the
conversations and the knowledge changes live there), the web chat's session key (made here
when ``MOTCUA_SECRET_KEY`` is unset, so that every child accepts every session) and, with
``MOTCUA_REDIS_URL``, the rate-limit counts and the channels' send slots (without Redis each
child keeps to its share of a channel's rate), and a folder for their metrics
(``PROMETHEUS_MULTIPROC_DIR``, emptied at start, or one made here for the run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bot.metrics import MULTIPROC_ENV
from bot.settings import Settings
from storage.db import async_url, upgrade

log = logging.getLogger(__name__)
LISTEN_FD = "MOTCUA_LISTEN_FD"  # a child's inherited listening socket
SUPERVISOR = "MOTCUA_SUPERVISOR"  # a child's parent's pid: gone, the child stops
MAX_FAILED_STARTS = 5  # a child dying this many times in a row within STARTUP: give up
STARTUP = 20.0  # seconds a child must live for its start to count as a success
STOP_TIMEOUT = 30.0  # seconds children get to finish after SIGTERM, then SIGKILL


def worker_problems(settings: Settings) -> list[str]:
    """Why this configuration cannot run ``settings.workers`` processes (empty when it can)."""
    if settings.workers <= 1:
        return []
    problems = []
    if async_url(settings.database_url).startswith("sqlite"):
        problems.append(
            f"--workers {settings.workers} needs PostgreSQL (DATABASE_URL=postgresql://…): "
            "SQLite takes one writer at a time and its outbox cannot be shared; run one "
            "process on SQLite")
    if any(c.telegram is not None and not c.telegram.public_base_url
           for c in settings.communes):
        problems.append(
            f"--workers {settings.workers} cannot poll Telegram: a bot has one getUpdates "
            "client at a time. Set PUBLIC_BASE_URL (and TELEGRAM_WEBHOOK_SECRET) to use the "
            "webhook, or run one process")
    return problems


@dataclass
class _Child:
    number: int
    process: subprocess.Popen[bytes]
    started: float
    failed_starts: int = 0
    restart_at: float = 0.0  # when a dead child is started again (0: it is running)


class Supervisor:
    """The parent of ``settings.workers`` server processes sharing one listening socket."""

    def __init__(self, settings: Settings, command: Sequence[str]) -> None:
        self.settings = settings
        self.command = list(command)  # the children's ``python -m bot serve …`` arguments
        self.stopping = False
        self.children: list[_Child] = []
        self.env: dict[str, str] = {}

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; 0 on a clean stop, 1 when a child kept failing."""
        problems = [*self.settings.problems, *worker_problems(self.settings)]
        if problems:
            raise SystemExit("refusing to start:\n  " + "\n  ".join(problems))
        # Once here; each child's own upgrade then finds the schema current.
        asyncio.run(upgrade(self.settings.database_url))
        listener = self._bind()
        self.env = {**os.environ, LISTEN_FD: str(listener.fileno()), SUPERVISOR: str(os.getpid()),
                    "MOTCUA_WORKERS": str(self.settings.workers)}
        if not self.settings.secret_key:
            log.warning("MOTCUA_SECRET_KEY is not set: the workers share a key made now, so "
                        "web chat sessions end when the server restarts")
            self.env["MOTCUA_SECRET_KEY"] = secrets.token_urlsafe(32)
        made = self._metrics_folder()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        self.children = [self._start(n) for n in range(1, self.settings.workers + 1)]
        log.info("%d workers on http://%s:%d/", len(self.children), self.settings.host,
                 self.settings.port)
        failed = False
        while not self.stopping and not failed:
            failed = self._tend()
            time.sleep(0.2)
        self._stop_children()
        listener.close()
        if made:
            shutil.rmtree(made, ignore_errors=True)
        return 1 if failed else 0

    def _metrics_folder(self) -> str:
        """Give the children one folder for their metrics, so that any child's ``/metrics``
        adds up all of them: ``PROMETHEUS_MULTIPROC_DIR``'s, emptied of the counts of an earlier
        run, or a new one (returned, to be removed at the end)."""
        given = self.env.get(MULTIPROC_ENV, "")
        if given:
            for old in Path(given).glob("*.db"):
                old.unlink()
            return ""
        made = tempfile.mkdtemp(prefix="motcua-metrics-")
        self.env[MULTIPROC_ENV] = made
        return made

    def _bind(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family, backlog=1024)
        listener.set_inheritable(True)
        return listener

    def _start(self, number: int, failed_starts: int = 0) -> _Child:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", *self.command],
            env=self.env, pass_fds=(int(self.env[LISTEN_FD]),))
        log.info("worker %d started (pid %d)", number, process.pid)
        return _Child(number, process, time.monotonic(), failed_starts)

    def _tend(self) -> bool:
        """Start again the children that died; True when one keeps failing to start."""
        now = time.monotonic()
        for i, child in enumerate(self.children):
            if child.restart_at:
                if now >= child.restart_at:
                    self.children[i] = self._start(child.number, child.failed_starts)
                continue
            code = child.process.poll()
            if code is None:
                continue
            failed = child.failed_starts + 1 if now - child.started < STARTUP else 0
            if failed >= MAX_FAILED_STARTS:
                log.error("worker %d failed to start %d times in a row (exit code %d); "
                          "stopping", child.number, failed, code)
                return True
            child.failed_starts = failed
            child.restart_at = now + min(2.0 ** failed, 30.0) if failed else now
            log.warning("worker %d (pid %d) exited with code %d; starting it again",
                        child.number, child.process.pid, code)
        return False

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_children(self) -> None:
        """SIGTERM to every child, then wait; SIGKILL what is still running after
        ``STOP_TIMEOUT``."""
        running = [c.process for c in self.children
                   if not c.restart_at and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in %.0f s; killed", process.pid,
                            STOP_TIMEOUT)
                process.kill()
                process.wait()
        log.info("workers stopped")


async def until_orphaned(stop: asyncio.Event, interval: float = 1.0) -> None:
    """Set ``stop`` when this child's supervisor is gone (killed with SIGKILL, it could not
    stop its children): a child must not keep serving on its own."""
    parent = int(os.environ.get(SUPERVISOR, "0") or os.getppid())
    while os.getppid() == parent:
        await asyncio.sleep(interval)
    log.warning("the supervisor (pid %d) is gone; stopping", parent)
    stop.set()


def inherited_listener() -> socket.socket | None:
    """The listening socket a child inherited from its supervisor, if it is one."""
    fd = os.environ.get(LISTEN_FD, "")
    return socket.socket(fileno=int(fd)) if fd.isdigit() else None
