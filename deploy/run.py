"""The production topology of compose.yaml without Docker: the migrations run once, then two
``python -m bot serve`` instances on one PostgreSQL database, and Caddy (deploy/Caddyfile) with
HTTPS in front of them.

    python deploy/run.py --database postgresql://motcua@127.0.0.1/motcua

Settings and secrets come from the environment and ``.env``, as for ``python -m bot``
(deploy/env.example). Every process writes its log into ``--state`` (with Caddy's certificates).
SIGTERM or Ctrl-C stops everything, the proxy first; the exit status is 0 when every process
stopped cleanly, 1 when one failed to start or died.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

CADDYFILE = Path(__file__).resolve().parent / "Caddyfile"
ROOT = CADDYFILE.parents[1]
sys.path.insert(0, str(ROOT))  # bot.settings, when run as a script from anywhere

from bot.settings import environment  # noqa: E402

STOP_TIMEOUT = 20.0  # seconds a process is given to stop after SIGTERM, then SIGKILL


class Process:
    """One child process, its log file and its name."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log: IO[bytes] = log.open("ab")
        self.popen = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"{self.name}: did not stop within {STOP_TIMEOUT:.0f} s, killed",
                      flush=True)
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        return self.popen.returncode


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="PostgreSQL URL (default: DATABASE_URL)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--first-port", type=int, default=8081,
                        help="the instances listen on 127.0.0.1 from this port up")
    parser.add_argument("--domain", default="localhost", help="the public name (MOTCUA_DOMAIN)")
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--http-port", type=int, default=8088,
                        help="Caddy's HTTP port (redirects to HTTPS, ACME challenges)")
    parser.add_argument("--tls", help="an e-mail for a public certificate, or 'internal' "
                                      "(default: MOTCUA_TLS, else internal)")
    parser.add_argument("--state", type=Path, default=Path("run-state"),
                        help="logs and Caddy's data (certificates)")
    parser.add_argument("--caddy", default="caddy", help="the Caddy binary")
    parser.add_argument("--instance-header", action="store_true",
                        help="answers name the instance that served them (X-Motcua-Instance)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for each part to answer")
    return parser.parse_args()


def wait_until_healthy(url: str, deadline: float, context: ssl.SSLContext | None,
                       processes: list[Process]) -> None:
    """Return once ``url`` answers 200; SystemExit if a process dies or time runs out."""
    while True:
        for process in processes:
            if process.popen.poll() is not None:
                raise SystemExit(f"{process.name} exited with {process.popen.returncode} "
                                 f"(see {process.log.name})")
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer 200 in time")
        time.sleep(0.25)


def main() -> int:
    args = arguments()
    env = environment()
    database = args.database or env.get("DATABASE_URL", "")
    if not database.startswith(("postgresql", "postgres://")):
        raise SystemExit("--database (or DATABASE_URL) must name a PostgreSQL database: the "
                         "instances share it")
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    tls = args.tls or env.get("MOTCUA_TLS") or "internal"
    ports = [args.first_port + n for n in range(args.instances)]
    public = f"https://{args.domain}" + ("" if args.https_port == 443 else f":{args.https_port}")
    base = {**env, "DATABASE_URL": database, "MOTCUA_HOST": "127.0.0.1",
            "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL") or public}
    base.setdefault("MOTCUA_TRUSTED_PROXIES", "127.0.0.1")  # Caddy's X-Forwarded-For
    if not base.get("MOTCUA_SECRET_KEY"):
        # Every instance must sign web chat sessions with the same key.
        print("MOTCUA_SECRET_KEY is not set: using a key made for this run", flush=True)
        base["MOTCUA_SECRET_KEY"] = secrets.token_urlsafe(32)

    migrate = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=base,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True)
    (state / "migrate.log").write_text(migrate.stdout + migrate.stderr)
    if migrate.returncode:
        print(f"migrations failed (see {state / 'migrate.log'})", file=sys.stderr)
        return 1
    print("migrations: done", flush=True)

    stopping: list[int] = []

    def stop_on(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop_on)
    signal.signal(signal.SIGINT, stop_on)
    processes: list[Process] = []
    try:
        deadline = time.monotonic() + args.timeout
        for n, port in enumerate(ports, start=1):
            processes.append(Process(f"motcua-{n}", [sys.executable, "-m", "bot", "serve"],
                                     {**base, "MOTCUA_PORT": str(port)},
                                     state / f"motcua-{n}.log"))
        for port in ports:
            wait_until_healthy(f"http://127.0.0.1:{port}/healthz", deadline, None, processes)
        print("instances: " + ", ".join(f"127.0.0.1:{port}" for port in ports), flush=True)
        caddy_env = {**env, "MOTCUA_DOMAIN": f"{args.domain}:{args.https_port}",
                     "MOTCUA_TLS": tls,
                     "MOTCUA_UPSTREAMS": " ".join(f"127.0.0.1:{port}" for port in ports),
                     "CADDY_ADMIN": "off", "CADDY_HTTP_PORT": str(args.http_port),
                     "CADDY_HTTPS_PORT": str(args.https_port),
                     "XDG_DATA_HOME": str(state / "caddy-data"),
                     "XDG_CONFIG_HOME": str(state / "caddy-config")}
        if args.instance_header:
            caddy_env["MOTCUA_INSTANCE_HEADER"] = "X-Motcua-Instance"
        processes.append(Process("caddy", [args.caddy, "run", "--adapter", "caddyfile",
                                           "--config", str(CADDYFILE)],
                                 caddy_env, state / "caddy.log"))
        root = state / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        context = ssl.create_default_context()
        while tls == "internal" and not root.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if tls == "internal":
            context.load_verify_locations(root)
        wait_until_healthy(f"https://{args.domain}:{args.https_port}/healthz", deadline,
                           context, processes)
        note = f" (Caddy's root certificate: {root})" if tls == "internal" else ""
        print(f"ready: {public}/{note}", flush=True)
        while not stopping:
            for process in processes:
                if process.popen.poll() is not None:
                    print(f"{process.name} exited with {process.popen.returncode} "
                          f"(see {process.log.name})", file=sys.stderr, flush=True)
                    stopping.append(0)
            time.sleep(0.2)
    except SystemExit as exc:
        print(exc, file=sys.stderr, flush=True)
        stopping.append(0)
    finally:
        # The proxy first, so that no request reaches an instance that is stopping.
        statuses = {process.name: process.stop() for process in reversed(processes)}
    for name, status in statuses.items():
        print(f"{name}: exited with {status}", flush=True)
    clean = bool(stopping) and stopping[0] != 0 and not any(statuses.values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
