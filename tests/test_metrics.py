"""GET /metrics as Prometheus reads it: what citizens' messages, the channels' answers, the
outbox and the jobs move, who may read it, and several processes adding up."""

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot import jobs
from bot.limits import parse_networks
from bot.outbox import Dispatcher
from bot.settings import Settings, TelegramConfig, ZaloConfig
from bot.telegram import add_telegram_routes, build_application, senders
from bot.web import DIALOGUE, SESSION_HEADER, create_app
from bot.zalo import ZaloClient, add_zalo_routes
from handlers.applications import Office
from knowledge.answer import Assistant
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope
from storage.models import Notification
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fakes.zalo import FakeZalo, now_ms, sign
from tests.samples import CODE

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:TEST-token"
SECRET = "s3cret_token-1"
ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_SECRET = "4321890765123456789", "app-s", "oa-s"
ZALO_USER = "246845883529197922"
METRICS_TOKEN = "metrics-token-0123456789"
SETTINGS = Settings(limit_chat_user="1000/minute", limit_chat_address="1000/minute",
                    limit_address="1000/minute", secret_key="test-secret",
                    metrics_token=METRICS_TOKEN)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@dataclass
class Rig:
    http: TestClient[web.Request, web.Application]
    telegram: FakeTelegram
    zalo: FakeZalo
    outbox: Dispatcher
    office: Office

    async def scrape(self, **headers: str) -> Samples:
        response = await self.http.get("/metrics", headers=headers)
        assert response.status == 200, response.status
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await response.text())

    async def chat(self, text: str, session: str = "") -> tuple[dict[str, Any], str]:
        response = await self.http.post("/api/chat", json={"text": text},
                                        headers={SESSION_HEADER: session} if session else {})
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer, answer.get("session", session)

    async def telegram_update(self, update: dict[str, object]) -> None:
        response = await self.http.post("/webhook/telegram", json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status == 200

    async def zalo_text(self, text: str) -> None:
        event = json.loads((ROOT / "tests/fixtures/zalo/user_send_text.json").read_text())
        event["timestamp"] = now_ms()
        event["sender"]["id"] = ZALO_USER
        event["message"]["text"] = text
        event["message"]["msg_id"] = f"m-{now_ms()}-{text}"
        raw = json.dumps(event, ensure_ascii=False).encode()
        response = await self.http.post("/webhook/zalo", data=raw, headers={
            "X-ZEvent-Signature": sign(raw, app_id=ZALO_APP_ID, oa_secret_key=ZALO_OA_SECRET,
                                       timestamp=str(event["timestamp"])),
            "Content-Type": "application/json"})
        assert response.status == 200


@pytest.fixture
async def rig(office: Office, assistant: Assistant) -> AsyncIterator[Rig]:
    """The server as ``serve`` assembles it, with Telegram and Zalo against their fakes."""
    telegram = FakeTelegram(TOKEN)
    zalo = FakeZalo(ZALO_APP_ID, ZALO_APP_SECRET, access_token="at-1", refresh_token="rt-1")
    async with TestServer(telegram.app()) as telegram_api, TestServer(zalo.app()) as zalo_api:
        telegram_config = TelegramConfig(
            token=TOKEN, webhook_secret=SECRET,
            api_base_url=str(telegram_api.make_url("")).rstrip("/"))
        zalo_url = str(zalo_api.make_url("")).rstrip("/")
        zalo_config = ZaloConfig.from_env({
            "ZALO_APP_ID": ZALO_APP_ID, "ZALO_APP_SECRET": ZALO_APP_SECRET,
            "ZALO_OA_SECRET_KEY": ZALO_OA_SECRET, "ZALO_ACCESS_TOKEN": "at-1",
            "ZALO_REFRESH_TOKEN": "rt-1", "ZALO_API_BASE_URL": zalo_url,
            "ZALO_OAUTH_BASE_URL": zalo_url})
        assert zalo_config is not None
        app = create_app(assistant, office, staff_channel=True, settings=SETTINGS)
        application = build_application(telegram_config, app[DIALOGUE])
        add_telegram_routes(app, application, telegram_config)
        client = ZaloClient(zalo_config, office)
        add_zalo_routes(app, dialogue=app[DIALOGUE], config=zalo_config, client=client)
        try:
            async with TestClient(TestServer(app)) as http:
                yield Rig(http, telegram, zalo,
                          Dispatcher(office, senders(application, telegram_config)), office)
        finally:
            await client.close()


async def test_a_web_chat_question_is_counted_with_its_kind_confidence_and_route(
        rig: Rig) -> None:
    before = await rig.scrape()
    answer, _ = await rig.chat("làm giấy khai sinh cần gì")
    assert answer["replies"][0]["intent"] == "procedure"
    after = await rig.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("motcua_updates_total", channel="web", outcome="answered") == 1
    assert moved("motcua_replies_total", channel="web", kind="procedure") == 1
    assert moved("motcua_match_confidence_count", kind="procedure") == 1
    assert moved("motcua_match_confidence_bucket", kind="procedure", le="0.95") == 0  # 1.0
    assert moved("motcua_request_duration_seconds_count", route="/api/chat", method="POST",
                 status="2xx") == 1
    assert moved("motcua_updates_total", channel="telegram", outcome="answered") == 0


async def test_hand_overs_and_declines_are_told_apart(rig: Rig) -> None:
    before = await rig.scrape()
    _, session = await rig.chat("giá vàng hôm nay bao nhiêu")
    await rig.chat("gặp cán bộ", session)
    after = await rig.scrape()
    assert value(after, "motcua_replies_total", channel="web", kind="decline") - value(
        before, "motcua_replies_total", channel="web", kind="decline") == 1
    assert value(after, "motcua_handovers_total", channel="web") - value(
        before, "motcua_handovers_total", channel="web") == 1


async def test_status_lookups_found_failed_and_refused(rig: Rig) -> None:
    before = await rig.scrape()
    _, session = await rig.chat(CODE)
    await rig.chat("0912 345 678", session)  # the right number
    for _ in range(6):  # the sixth wrong try in a day is refused without a check
        await rig.chat(CODE, session)
        answer, _ = await rig.chat("0987 654 321", session)
    assert answer["replies"][0]["intent"] == "lookup_failed"
    after = await rig.scrape()
    moved = {outcome: value(after, "motcua_status_lookups_total", outcome=outcome)
             - value(before, "motcua_status_lookups_total", outcome=outcome)
             for outcome in ("found", "failed", "refused")}
    assert moved == {"found": 1, "failed": 5, "refused": 1}


async def test_a_telegram_update_and_a_429_from_telegram_are_counted(rig: Rig) -> None:
    before = await rig.scrape()
    await rig.telegram_update(text_update(1, 601, "/start"))
    rig.telegram.flood = 1  # the next sendMessage gets 429
    await rig.telegram_update(text_update(2, 601, "làm giấy khai sinh cần gì"))
    after = await rig.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("motcua_updates_total", channel="telegram", outcome="answered") == 2
    assert moved("motcua_replies_total", channel="telegram", kind="procedure") == 1
    assert moved("motcua_channel_throttled_total", channel="telegram") == 1
    assert moved("motcua_messages_sent_total", channel="telegram") == len(
        rig.telegram.delivered(601)) == 1  # the greeting; the answer waits in the outbox
    assert moved("motcua_request_duration_seconds_count", route="/webhook/telegram",
                 method="POST", status="2xx") == 2
    # The answer Telegram refused is in the outbox, due once the webhook's lease runs out.
    assert value(after, "motcua_outbox_pending") == 1
    assert value(after, "motcua_outbox_due") == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert await rig.outbox.run_once(later) == 1
    last = await rig.scrape()
    assert value(last, "motcua_outbox_messages_total", channel="telegram", outcome="sent") \
        - value(after, "motcua_outbox_messages_total", channel="telegram", outcome="sent") == 1
    assert last[("motcua_outbox_pending", ())] == 0


async def test_a_zalo_update_is_counted(rig: Rig) -> None:
    before = await rig.scrape()
    await rig.zalo_text("làm giấy khai sinh cần gì")
    after = await rig.scrape()
    assert value(after, "motcua_updates_total", channel="zalo", outcome="answered") - value(
        before, "motcua_updates_total", channel="zalo", outcome="answered") == 1
    assert value(after, "motcua_replies_total", channel="zalo", kind="procedure") - value(
        before, "motcua_replies_total", channel="zalo", kind="procedure") == 1
    assert value(after, "motcua_messages_sent_total", channel="zalo") - value(
        before, "motcua_messages_sent_total", channel="zalo") == len(rig.zalo.sent(ZALO_USER))


async def test_outbox_depth_is_read_from_the_database(rig: Rig) -> None:
    now = dt.datetime.now(dt.UTC)
    async with session_scope(rig.office.sessions) as session:
        await repo.enqueue(session, [Notification(
            commune_id=rig.office.commune_id, channel="zalo", recipient=f"u{i}", text="x",
            idempotency_key=f"depth-{i}", created_at=now - dt.timedelta(minutes=10),
            next_attempt_at=now + dt.timedelta(minutes=2 * i - 1)) for i in range(3)])
    samples = await rig.scrape()
    assert value(samples, "motcua_database_up") == 1
    assert value(samples, "motcua_outbox_pending") == 3
    assert value(samples, "motcua_outbox_due") == 1  # i=0; the others later
    assert 590 < value(samples, "motcua_outbox_oldest_seconds") < 700


async def test_job_runs_are_counted_by_outcome(rig: Rig) -> None:
    async def works(now: dt.datetime) -> str:
        return "done"

    async def breaks(now: dt.datetime) -> str:
        raise RuntimeError("broken")

    before = await rig.scrape()
    at = dt.datetime(2026, 12, 6, 3, tzinfo=dt.UTC)
    assert await jobs.run_job(rig.office, jobs.Job("metrics-test", dt.timedelta(hours=1), works),
                              at)
    assert not await jobs.run_job(rig.office, jobs.Job("metrics-test", dt.timedelta(hours=1),
                                                       works), at)  # slot taken
    assert await jobs.run_job(rig.office, jobs.Job("metrics-test", dt.timedelta(hours=1),
                                                   breaks), at + dt.timedelta(hours=1))
    after = await rig.scrape()
    assert {o: value(after, "motcua_job_runs_total", job="metrics-test", outcome=o)
            - value(before, "motcua_job_runs_total", job="metrics-test", outcome=o)
            for o in ("ok", "skipped", "failed")} == {"ok": 1, "skipped": 1, "failed": 1}


async def test_metrics_are_refused_outside_the_networks_without_the_token(
        office: Office, assistant: Assistant) -> None:
    elsewhere = replace(SETTINGS, metrics_networks=parse_networks("10.0.0.0/8"))
    async with TestClient(TestServer(create_app(assistant, office, settings=elsewhere))) as http:
        assert (await http.get("/metrics")).status == 403  # loopback is not in 10/8
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 403
        assert "motcua_" not in await wrong.text()
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status == 200
        assert "motcua_database_up 1.0" in await right.text()
    async with TestClient(TestServer(create_app(assistant, office, settings=SETTINGS))) as http:
        assert (await http.get("/metrics")).status == 200  # loopback, the default
        # Through a proxy on this machine that is not trusted: its address proves nothing.
        proxied = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status == 403
    trusted = replace(SETTINGS, trusted_proxies=parse_networks("127.0.0.1"))
    async with TestClient(TestServer(create_app(assistant, office, settings=trusted))) as http:
        assert (await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
                ).status == 403
        assert (await http.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
                ).status == 200


def test_metrics_settings_from_the_environment() -> None:
    settings = Settings.from_env({"MOTCUA_METRICS_NETWORKS": "10.1.0.0/16, 192.168.1.5",
                                  "MOTCUA_METRICS_TOKEN": METRICS_TOKEN})
    assert [str(n) for n in settings.metrics_networks] == ["10.1.0.0/16", "192.168.1.5/32"]
    assert METRICS_TOKEN not in repr(settings)
    assert [str(n) for n in Settings.from_env({}).metrics_networks] == ["127.0.0.0/8",
                                                                        "::1/128"]
    with pytest.raises(SystemExit, match="MOTCUA_METRICS_NETWORKS"):
        Settings.from_env({"MOTCUA_METRICS_NETWORKS": "everyone"})
    with pytest.raises(SystemExit, match="MOTCUA_METRICS_TOKEN"):
        Settings.from_env({"MOTCUA_METRICS_TOKEN": "short"})
    with pytest.raises(SystemExit, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"})


COUNT_ONE = """
from bot import metrics
from handlers.messages import Reply
metrics.observe_turn("telegram", [Reply("x", intent="procedure", score=0.8)])
"""
RENDER = """
import datetime as dt, sys
from bot import metrics
sys.stdout.write(metrics.render(None, now=dt.datetime.now(dt.UTC)).decode())
"""


def test_counts_of_several_processes_add_up_with_a_multiprocess_directory(
        tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    python(COUNT_ONE)
    python(COUNT_ONE)  # another worker process
    samples = parse(python(RENDER))  # and a third one answers the scrape
    assert value(samples, "motcua_updates_total", channel="telegram", outcome="answered") == 2
    assert value(samples, "motcua_match_confidence_count", kind="procedure") == 2
    assert samples[("motcua_database_up", ())] == 0  # no database was given


async def test_metrics_still_answer_when_the_database_is_gone(
        office: Office, assistant: Assistant) -> None:
    gone = replace(office, sessions=make_sessions(make_engine(
        "sqlite:////nonexistent-directory/motcua.sqlite3")))
    async with TestClient(TestServer(create_app(assistant, gone, settings=SETTINGS))) as http:
        response = await http.get("/metrics")
        assert response.status == 200
        samples = parse(await response.text())
    assert samples[("motcua_database_up", ())] == 0
    assert ("motcua_outbox_pending", ()) not in samples  # unknown, not zero
