"""Command line: ``python -m bot serve | ask | kb check | kb import-portal | kb evaluate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot import logs
from bot.runtime import create_api_key, open_office
from bot.settings import Settings, environment
from handlers import broadcasts, feedback
from handlers.applications import Office, import_file, stats_for_period
from handlers.feedback import report_text
from handlers.status import lookup_status
from knowledge.answer import Assistant
from knowledge.fees import with_fees
from knowledge.i18n import Text
from knowledge.loader import KnowledgeBase, KnowledgeError, load_knowledge, load_procedures
from knowledge.portal import read_portal, write_toml
from knowledge.schema import Procedure
from knowledge.workdays import TZ
from storage import applications as outbox_repo
from storage import feedback as feedback_repo
from storage import staff
from storage.applications import revoke_integration_keys
from storage.broadcasts import AUDIENCES
from storage.db import downgrade, revision, session_scope, upgrade
from storage.domain import FIRST_DAY, LAST_DAY, within_bounds
from storage.importfile import ImportFileError
from storage.retention import purge
from storage.staff import ROLES, StaffError

log = logging.getLogger("bot")


def load_imported(paths: Iterable[Path]) -> list[Procedure]:
    """Procedures from portal exports (``.jsonl``/``.jsonl.gz``) or folders of TOML files."""
    out: list[Procedure] = []
    for path in paths:
        if path.is_dir():
            out.extend(load_procedures(path).values())
            continue
        result = read_portal(path)
        for problem in result.problems:
            log.warning("portal import: %s", problem)
        out.extend(result.procedures)
    return out


def build_knowledge(portal: Sequence[Path], commune: str, profiles: Path | None = None
                    ) -> KnowledgeBase:
    """The bundled knowledge base plus the imported entries, with the commune's profile
    (from ``profiles``, else the bundled ones)."""
    return load_knowledge(imported=load_imported(portal), commune=commune, profiles=profiles)


def _settings_and_kb(args: argparse.Namespace) -> tuple[Settings, KnowledgeBase]:
    """The settings, and the knowledge with the profile of ``--commune`` (default: the
    first commune served)."""
    settings = Settings.from_env()
    portal = [*settings.portal_files, *args.portal]
    commune = settings.commune(getattr(args, "commune", None)).slug
    return settings, build_knowledge(portal, commune, settings.commune_profiles)


def _commune_knowledge(args: argparse.Namespace) -> tuple[Settings, KnowledgeBase]:
    """``_settings_and_kb`` with the fees the commune's province and it set (an office's
    knowledge has them already: ``open_offices``)."""
    settings, kb = _settings_and_kb(args)
    return settings, with_fees(kb, settings.commune_profiles)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web server (web chat on localhost by default) with the database."""
    from bot.app import serve
    from bot.workers import Supervisor, inherited_listener

    settings = Settings.from_env()
    settings = replace(settings, host=args.host or settings.host,
                       port=args.port or settings.port,
                       workers=settings.workers if args.workers is None else args.workers)
    if settings.workers < 1:
        raise SystemExit("--workers must be 1 or more")
    listener = inherited_listener()
    if settings.workers > 1 and listener is None:  # the parent of the workers
        command = ["serve", f"--host={settings.host}", f"--port={settings.port}",
                   *(f"--portal={path}" for path in args.portal)]
        return Supervisor(settings, command).run()
    kb = build_knowledge([*settings.portal_files, *args.portal], settings.communes[0].slug,
                         settings.commune_profiles)

    async def until_stopped() -> None:
        # SIGTERM (docker stop, systemd, deploy/run.py, the workers' parent) stops as Ctrl-C
        # does: requests under way finish, the outbox and the jobs stop, connections close.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await serve(settings, kb, listener=listener)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(until_stopped())
    return 0


def cmd_posters(args: argparse.Namespace) -> int:
    """Write the notice-board posters (PDF and PNG) into ``--out``."""
    from bot.posters import Links, make_posters

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # a line per font subset
    settings, kb = _commune_knowledge(args)
    unknown = [code for code in args.codes if code not in kb.procedures]
    if unknown:
        raise SystemExit(f"posters: no procedure with the code {', '.join(unknown)}")
    links = Links.from_settings(settings, settings.commune(args.commune), kb.commune)
    for note in links.missing():
        print(f"note: {note}", file=sys.stderr)
    codes = args.codes or sorted(kb.procedures)
    written = make_posters(Assistant(kb), links, Path(args.out), codes, args.lang)
    print(f"{len(written)} files written to {args.out} ({len(codes)} procedures)")
    return 0


def _questions(args: argparse.Namespace) -> list[str]:
    if args.batch:
        try:
            return Path(args.batch).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"cannot read {args.batch}: {exc}") from None
    if not args.question:
        raise SystemExit("ask: give a QUESTION or --batch FILE")
    return [" ".join(args.question)]


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer questions; ``--json`` prints the stable contract, one object per line."""
    _, kb = _commune_knowledge(args)
    assistant = Assistant(kb)
    for question in _questions(args):
        answer = assistant.ask(question, top=args.top)
        if args.json:
            print(json.dumps(answer.contract(), ensure_ascii=False))
        else:
            print(answer.answer, end="\n\n")
    return 0


def cmd_kb_check(args: argparse.Namespace) -> int:
    """Validate the bundled knowledge base (and imports); print what was loaded and, with
    ``--since``, the bundled entries whose facts were not checked against the law since then
    (exit status 1 when there are any)."""
    _, kb = _commune_knowledge(args)
    print(f"{len(kb.bundled_codes)} bundled procedures, "
          f"{len(kb.procedures) - len(kb.bundled_codes)} imported, {len(kb.faqs)} FAQ entries, "
          f"commune: {kb.commune.name}")
    if args.since is None:
        return 0
    entries = [(f"procedure {code}", kb.procedures[code].checked)
               for code in sorted(kb.bundled_codes)]
    entries += [(f"faq {faq.id}", faq.checked) for faq in sorted(kb.faqs, key=lambda f: f.id)]
    stale = [(name, checked) for name, checked in entries
             if checked is None or checked < args.since]
    print(f"{len(stale)} of {len(entries)} entries not checked since {args.since.isoformat()}")
    for name, checked in stale:
        print(f"  {name}: {checked.isoformat() if checked else 'never checked'}")
    return 1 if stale else 0


def cmd_kb_import(args: argparse.Namespace) -> int:
    """Convert a portal export into TOML entries that ``--portal DIR`` can load."""
    result = read_portal(Path(args.file))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for procedure in result.procedures:
        write_toml(procedure, out)
    for problem in result.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    unconfirmed = sum(p.has_unconfirmed for p in result.procedures)
    print(f"imported {len(result.procedures)} procedures into {out} "
          f"({unconfirmed} with an unconfirmed time or fee); {len(result.problems)} problems")
    return 0 if result.procedures or not result.problems else 1


def cmd_kb_evaluate(args: argparse.Namespace) -> int:
    """Print the evaluation report over our question sets."""
    from bot.dialogues import read_dialogues, run_dialogues
    from bot.dialogues import render as render_dialogues
    from knowledge.evaluate import (
        evaluate_files,
        evaluate_legal,
        read_legal,
        render,
        render_legal,
    )

    _, kb = _settings_and_kb(args)
    data = Path("tests/data")
    questions = args.questions or sorted(
        [*data.glob("questions_*.jsonl"), *(data.glob("catalog_*.jsonl")
                                            if len(kb.procedures) > len(kb.bundled_codes)
                                            else [])])
    assistant = Assistant(kb)
    report = evaluate_files(assistant, [Path(p) for p in questions])
    dialogues = {Path(p).name: asyncio.run(run_dialogues(assistant, read_dialogues(Path(p))))
                 for p in args.dialogues or sorted(data.glob("dialogues_*.jsonl"))}
    legal = {Path(p).name: evaluate_legal(assistant, read_legal(Path(p)))
             for p in args.legal or sorted(data.glob("legal_*.jsonl"))}
    if args.json:
        print(json.dumps({"questions": report, "dialogues": dialogues, "legal": legal},
                         ensure_ascii=False, indent=2))
    else:
        print(render(report))
        for name, result in dialogues.items():
            print(render_dialogues(name, result))
        for name, result in legal.items():
            print(render_legal(name, result))
    return 0


def _office_command(args: argparse.Namespace,
                    run: Callable[[Office], Awaitable[int]]) -> int:
    """Run ``run`` with the office of ``--commune`` (default: the first commune served),
    migrating the database first."""
    settings, kb = _settings_and_kb(args)

    async def main() -> int:
        async with open_office(settings, kb, args.commune) as office:
            return await run(office)

    return asyncio.run(main())


def cmd_db_revision(args: argparse.Namespace) -> int:
    """Print the migration the database schema is at."""
    print(asyncio.run(revision(Settings.from_env().database_url)) or "none (empty database)")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    """Take the schema back to an older release's migration (a rollback)."""
    url = Settings.from_env().database_url
    asyncio.run(downgrade(url, args.revision))
    print(f"database schema is at {asyncio.run(revision(url)) or 'none'}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    url = Settings.from_env().database_url
    asyncio.run(upgrade(url))
    print(f"database schema is up to date ({url.split('://')[0]})")
    return 0


def cmd_applications_import(args: argparse.Namespace) -> int:
    """Import a CSV/XLSX export of the one-stop system."""
    limits = Settings.from_env().import_limits

    async def run(office: Office) -> int:
        try:
            report = await import_file(office, Path(args.file), skip_bad=args.skip_bad,
                                       now=dt.datetime.now(dt.UTC), limits=limits)
        except ImportFileError as exc:
            print(f"nothing imported: {exc}", file=sys.stderr)
            return 1
        for error in report.errors:
            print(f"line {error.line}: {error.message}", file=sys.stderr)
        if report.more_errors:
            print(f"… and {report.more_errors:,} more problems", file=sys.stderr)
        problems = len(report.errors) + report.more_errors
        if not report.imported:
            print(f"nothing imported: {problems:,} problems in {report.bad_rows:,} of "
                  f"{report.rows:,} rows (fix them, or use --skip-bad to import the good rows)",
                  file=sys.stderr)
            return 1
        skipped = f"; {report.bad_rows:,} bad rows skipped" if report.bad_rows else ""
        print(f"imported {report.rows} rows: {report.created} new, {report.updated} updated, "
              f"{report.unchanged} unchanged; {report.notifications} notifications queued"
              f"{skipped}")
        return 0

    return _office_command(args, run)


def cmd_status(args: argparse.Namespace) -> int:
    """Look an application up as a citizen would (code + the phone number given)."""
    async def run(office: Office) -> int:
        async with session_scope(office.sessions) as session:
            answer = await lookup_status(
                session, commune_id=office.commune_id, receipt_code=args.code,
                phone=args.phone, user_key=f"cli:{getpass.getuser()}",
                lang=args.lang, now=dt.datetime.now(dt.UTC))
        if args.json:
            print(json.dumps({"found": answer.application_id is not None,
                              "refused": answer.refused, "text": answer.text},
                             ensure_ascii=False))
        else:
            print(answer.text)
        return 0 if answer.application_id is not None else 1

    return _office_command(args, run)


def _day(text: str) -> dt.date:
    """A date option: ISO 8601, within the dates an application may carry."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
    if not within_bounds(day):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}")
    return day


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the statistics of a period."""
    if args.start and args.end and args.end < args.start:
        print("stats: --to is before --from", file=sys.stderr)
        return 2

    async def run(office: Office) -> int:
        stats = await stats_for_period(office, args.start, args.end,
                                       now=dt.datetime.now(dt.UTC))
        report = stats.report()
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
            return 0
        print(f"{office.kb.commune.name}: {report['from'][:10]} – {args.end or 'today'}")
        for key in ("received", "online", "in_person", "post", "settled_on_time",
                    "settled_late", "settled_without_due_date", "in_progress",
                    "in_progress_overdue", "closed_without_result", "average_processing_days"):
            print(f"  {key:<26} {report[key]}")
        for row in report["by_procedure"]:
            print(f"  {row['code'] or '-':<10} {row['received']:>6}  {row['name'][:60]}")
        return 0

    return _office_command(args, run)


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete the commune's records older than their retention period (MOTCUA_KEEP_*_DAYS)."""
    periods = Settings.from_env().retention

    async def run(office: Office) -> int:
        async with session_scope(office.sessions) as session:
            counts = await purge(session, commune_id=office.commune_id,
                                 now=dt.datetime.now(dt.UTC), periods=periods,
                                 dry_run=args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        for kind, days in asdict(periods).items():
            if kind in counts:
                print(f"{kind:<14} {verb:<12} {counts[kind]:>9,}  (older than {days} days)")
            else:
                print(f"{kind:<14} kept forever")
        return 0

    return _office_command(args, run)


def cmd_outbox(args: argparse.Namespace) -> int:
    """List the messages that expired unsent, or put them back in the outbox."""
    expiry = dt.timedelta(days=Settings.from_env().outbox_expiry_days)

    async def run(office: Office) -> int:
        now = dt.datetime.now(dt.UTC)
        async with session_scope(office.sessions) as session:
            if args.outbox == "expired":
                for n in await outbox_repo.expired_notifications(
                        session, commune_id=office.commune_id,
                        outcomes=("expired", "undeliverable")):
                    created = n.created_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
                    print(f"{n.id:>9}  {created}  {n.kind:<9} {n.channel:<8} "
                          f"{n.attempts:>3} tries  {n.outcome}")
                return 0
            ids = None if args.all else args.ids
            if not ids and not args.all:
                print("name the messages to send again (IDs) or use --all", file=sys.stderr)
                return 2
            count = await outbox_repo.resend_expired(
                session, commune_id=office.commune_id, ids=ids, now=now,
                expires_at=now + expiry)
        print(f"{count} message(s) back in the outbox")
        return 0

    return _office_command(args, run)


def cmd_apikey(args: argparse.Namespace) -> int:
    """Create or revoke an integration's API key."""
    async def run(office: Office) -> int:
        if args.action == "create":
            print(await create_api_key(office, args.name))
            print(f"API key for '{args.name}' (shown once; store it in the integration)",
                  file=sys.stderr)
            return 0
        async with session_scope(office.sessions) as session:
            count = await revoke_integration_keys(session, commune_id=office.commune_id,
                                                  name=args.name, at=dt.datetime.now(dt.UTC))
        print(f"revoked {count} key(s) of '{args.name}'")
        return 0 if count else 1

    return _office_command(args, run)


def _new_password() -> str:
    """The password to set: ``MOTCUA_STAFF_PASSWORD`` (for scripts), else asked twice."""
    if password := os.environ.get("MOTCUA_STAFF_PASSWORD", ""):
        staff.check_password(password)
        return password
    password = getpass.getpass("password: ")
    staff.check_password(password)
    if getpass.getpass("password again: ") != password:
        raise StaffError("the two passwords differ")
    return password


def cmd_staff(args: argparse.Namespace) -> int:
    """Create, list or disable staff console accounts, or set a new password; each audited."""
    actor = f"cli:{getpass.getuser()}"
    try:
        password = _new_password() if args.action in ("create", "reset-password") else ""
    except StaffError as exc:
        print(f"staff: {exc}", file=sys.stderr)
        return 1

    async def run(office: Office) -> int:
        now = dt.datetime.now(dt.UTC)
        async with session_scope(office.sessions) as session:
            if args.action in ("create", "list"):
                commune = office.commune_id
                if args.action == "list":
                    await staff.audit(session, commune_id=commune, actor=actor,
                                      action="staff.list", at=now)
                    for account in await staff.list_accounts(session, commune_id=commune):
                        state = "disabled" if account.disabled else "active"
                        print(f"{account.login:<24} {account.role:<8} {state:<9} "
                              f"{account.display_name}")
                    return 0
                account = await staff.create_account(
                    session, commune_id=commune, login=args.login, display_name=args.name,
                    role=args.role, password=password, now=now)
            else:
                found = await staff.account_by_login(session, args.login)
                if found is None:
                    raise StaffError(f"no account '{args.login}'")
                account = found
                if args.action == "disable":
                    await staff.disable(session, account, now=now)
                else:
                    await staff.set_password(session, account, password, now=now)
            await staff.audit(session, commune_id=account.commune_id, actor=actor,
                              action=f"staff.{args.action}", target=account.login,
                              detail=f"role={account.role}" if args.action == "create" else "",
                              at=now)
        print(f"{account.login}: {args.action} done")
        return 0

    async def guarded(office: Office) -> int:
        try:
            return await run(office)
        except StaffError as exc:
            print(f"staff: {exc}", file=sys.stderr)
            return 1

    return _office_command(args, guarded)


def cmd_broadcast(args: argparse.Namespace) -> int:
    """Create (a draft, with its preview), send (confirm, now or at a time), show the report
    of, or cancel a staff broadcast."""
    async def run(office: Office) -> int:
        try:
            if args.action == "create":
                made = await broadcasts.create(office, text=args.text, link=args.link,
                                               image=args.image, audience=args.audience,
                                               value=args.value, created_by="cli")
                print(made.text)
                print(f"broadcast {made.broadcast.id}: draft, {made.recipients} recipient(s); "
                      f"send it with: python -m bot broadcast send {made.broadcast.id} "
                      "[--at 'YYYY-MM-DD HH:MM']", file=sys.stderr)
                return 0
            if args.action == "send":
                at = None
                if args.at:
                    at = dt.datetime.fromisoformat(args.at)
                    at = at if at.tzinfo else at.replace(tzinfo=TZ)
                done = await broadcasts.schedule(office, args.id, at=at)
                when = done.send_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") \
                    if done.send_at else "-"
                print(f"broadcast {done.id}: {done.status} ({done.recipients} message(s)), "
                      f"at {when}")
                return 0
            if args.action == "cancel":
                stopped = await broadcasts.cancel(office, args.id)
                print(f"broadcast {args.id}: cancelled, {stopped} unsent message(s) stopped")
                return 0
            broadcast, report = await broadcasts.status(office, args.id)
        except (broadcasts.BroadcastError, ValueError) as exc:
            print(f"broadcast: {exc}", file=sys.stderr)
            return 1
        channels = {**report.channels, "total": report.total}
        if args.json:
            print(json.dumps({"id": broadcast.id, "status": broadcast.status,
                              "channels": {c: asdict(r) for c, r in channels.items()}}))
            return 0
        print(f"broadcast {broadcast.id}: {broadcast.status}, audience {broadcast.audience} "
              f"{broadcast.audience_value}".rstrip())
        names = ("queued", "sent", "pending", "failed", "unreachable", "undeliverable")
        print(f"{'channel':<10}" + "".join(f"{n:>14}" for n in names))
        for channel, counts in channels.items():
            print(f"{channel:<10}" + "".join(f"{getattr(counts, n):>14,}" for n in names))
        return 0

    return _office_command(args, run)


def cmd_feedback(args: argparse.Namespace) -> int:
    """Citizens' reports: list those waiting (or ``--all``), show one, answer it (the answer
    is queued for the citizen), assign it to an officer, close it."""
    async def run(office: Office) -> int:
        now = dt.datetime.now(dt.UTC)
        try:
            if args.action == "list":
                async with office.sessions() as session:
                    reports = await feedback_repo.listing(
                        session, commune_id=office.commune_id,
                        statuses=feedback_repo.STATUSES if args.all else feedback_repo.PENDING)
                for r in reports:
                    due = r.due_at.astimezone(TZ).strftime("%Y-%m-%d") if r.due_at else "-"
                    late = " OVERDUE" if r.status in feedback_repo.PENDING and r.due_at \
                        and r.due_at < now else ""
                    print(f"{feedback_repo.tracking_number(r)}  {r.status:<9} {due}{late:<8} "
                          f"{r.kind:<13} {r.assignee or '-':<12} {r.description[:50]!r}")
                print(f"{len(reports)} report(s)", file=sys.stderr)
                return 0
            if args.action == "answer":
                report = await feedback.answer(office, args.id, args.text,
                                               by=f"cli:{getpass.getuser()}", now=now)
            elif args.action == "assign":
                report = await feedback.assign(office, args.id, args.login)
            elif args.action == "close":
                report = await feedback.close(office, args.id, now=now)
            else:
                report = await feedback.find(office, args.id)
        except feedback.FeedbackError as exc:
            print(f"feedback: {exc}", file=sys.stderr)
            return 1
        print(report_text(report, Text("vi"), full=True))
        print(f"status {report.status}; assigned to {report.assignee or '-'}; filed "
              f"{report.filed_at:%Y-%m-%d %H:%M} UTC on {report.channel}" if report.filed_at
              else "", file=sys.stderr)
        return 0

    return _office_command(args, run)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bot``."""
    top = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def with_portal(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--portal", action="append", type=Path, default=[], metavar="FILE",
                       help="portal export (.jsonl/.jsonl.gz) or folder of TOML entries; "
                            "repeatable; also MOTCUA_PORTAL_FILES")
        return p

    serve = with_portal(sub.add_parser("serve", help="run the assistant"))
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, metavar="N",
                       help="server processes behind the port (PostgreSQL only; also "
                            "MOTCUA_WORKERS)")
    serve.set_defaults(func=cmd_serve)

    ask = with_portal(sub.add_parser("ask", help="answer a question"))
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--top", type=int, default=3)
    ask.add_argument("--batch", metavar="FILE", help="one question per line")
    ask.add_argument("question", nargs="*")
    ask.set_defaults(func=cmd_ask)

    posters = with_portal(sub.add_parser("posters", help="notice-board QR posters"))
    posters.add_argument("--out", required=True, metavar="DIR")
    posters.add_argument("--codes", nargs="+", default=[], metavar="CODE",
                         help="these procedures (default: every one loaded)")
    posters.add_argument("--lang", choices=["vi", "en"], default="vi")
    posters.set_defaults(func=cmd_posters)

    kb = sub.add_parser("kb", help="knowledge base").add_subparsers(dest="kb", required=True)
    check = with_portal(kb.add_parser("check", help="validate"))
    check.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                       help="list the entries not checked against the law since this date")
    check.set_defaults(func=cmd_kb_check)
    imp = kb.add_parser("import-portal", help="convert a portal export to TOML entries")
    imp.add_argument("file")
    imp.add_argument("--out", default="data/portal")
    imp.set_defaults(func=cmd_kb_import)
    db = sub.add_parser("db", help="database").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("revision", help="the migration the database is at").set_defaults(
        func=cmd_db_revision)
    down = db.add_parser("downgrade", help="undo migrations down to REVISION (rollback)")
    down.add_argument("revision", help="e.g. 0014: what `db revision` printed before upgrading")
    down.set_defaults(func=cmd_db_downgrade)

    apps = sub.add_parser("applications", help="applications (hồ sơ)").add_subparsers(
        dest="applications", required=True)
    imp_apps = apps.add_parser("import", help="import a CSV/XLSX export")
    imp_apps.add_argument("file")
    imp_apps.add_argument("--skip-bad", action="store_true",
                          help="import the good rows and report the bad ones")
    imp_apps.set_defaults(func=cmd_applications_import, portal=[])

    status = sub.add_parser("status", help="look an application up")
    status.add_argument("code")
    status.add_argument("--phone", required=True,
                        help="the phone number given at submission (or its last 4 digits)")
    status.add_argument("--json", action="store_true")
    status.add_argument("--lang", choices=["vi", "en"], default="vi")
    status.set_defaults(func=cmd_status, portal=[])

    stats = sub.add_parser("stats", help="statistics of a period")
    stats.add_argument("--from", dest="start", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--to", dest="end", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats, portal=[])

    purge_parser = sub.add_parser("purge", help="delete records past their retention period")
    purge_parser.add_argument("--dry-run", action="store_true",
                              help="count what would be deleted, delete nothing")
    purge_parser.set_defaults(func=cmd_purge, portal=[])

    apikey = sub.add_parser("apikey", help="API keys of integrations")
    apikey.add_argument("action", choices=["create", "revoke"])
    apikey.add_argument("name")
    apikey.set_defaults(func=cmd_apikey, portal=[])

    outbox = sub.add_parser("outbox", help="messages waiting or expired").add_subparsers(
        dest="outbox", required=True)
    expired = outbox.add_parser("expired", help="list the messages that expired unsent, or "
                                "that their channel would not take (undeliverable)")
    expired.set_defaults(func=cmd_outbox, portal=[])
    resend = outbox.add_parser("resend", help="send expired messages again")
    resend.add_argument("ids", nargs="*", type=int, metavar="ID")
    resend.add_argument("--all", action="store_true")
    resend.set_defaults(func=cmd_outbox, portal=[])

    cast = sub.add_parser("broadcast", help="staff announcements").add_subparsers(
        dest="action", required=True)
    cast_create = cast.add_parser("create", help="a draft and its preview (sends nothing)")
    cast_create.add_argument("text")
    cast_create.add_argument("--link", default="")
    cast_create.add_argument("--image", default="", metavar="URL",
                             help="an https:// image shown with the text")
    cast_create.add_argument("--audience", default="all", choices=AUDIENCES,
                             help="subscribers (all, a hamlet, a language) or followers "
                                  "(of a field or procedure)")
    cast_create.add_argument("--value", default="", help="the field, procedure code, hamlet "
                                                         "or language (vi, en)")
    cast_send = cast.add_parser("send", help="confirm: send now, or --at a local time")
    cast_send.add_argument("--at", help="YYYY-MM-DD HH:MM, Hà Nội time unless a zone is given")
    cast_status = cast.add_parser("status", help="the report per channel")
    cast_status.add_argument("--json", action="store_true")
    cast_cancel = cast.add_parser("cancel", help="stop what is not yet sent")
    for p in (cast_send, cast_status, cast_cancel):
        p.add_argument("id", type=int)
    for p in (cast_create, cast_send, cast_status, cast_cancel):
        p.set_defaults(func=cmd_broadcast, portal=[])

    people = sub.add_parser("staff", help="staff console accounts").add_subparsers(
        dest="action", required=True)
    people_create = people.add_parser("create", help="a new account (password asked twice, "
                                                      "or MOTCUA_STAFF_PASSWORD)")
    people_create.add_argument("login")
    people_create.add_argument("--name", required=True, help="the name shown in the console")
    people_create.add_argument("--role", choices=ROLES, default="officer")
    people_list = people.add_parser("list", help="the accounts of a commune")
    people_reset = people.add_parser("reset-password", help="set a new password; signs the "
                                                            "account out everywhere")
    people_disable = people.add_parser("disable", help="refuse its sign-ins from now on")
    for p in (people_reset, people_disable):
        p.add_argument("login")
    for p in (people_create, people_list, people_reset, people_disable):
        p.set_defaults(func=cmd_staff, portal=[])

    reports = sub.add_parser("feedback", help="citizens' reports (phản ánh, kiến nghị)"
                             ).add_subparsers(dest="action", required=True)
    report_list = reports.add_parser("list", help="reports waiting for an answer")
    report_list.add_argument("--all", action="store_true", help="also answered and closed")
    report_show = reports.add_parser("show", help="one report")
    report_answer = reports.add_parser("answer", help="answer a report (sent to the citizen)")
    report_assign = reports.add_parser("assign", help="give a report to an officer")
    report_close = reports.add_parser("close", help="close a report")
    for p in (report_show, report_answer, report_assign, report_close):
        p.add_argument("id", help="tracking number (PA-2026-000123) or id")
    report_answer.add_argument("text")
    report_assign.add_argument("login")
    for p in (report_list, report_show, report_answer, report_assign, report_close):
        p.set_defaults(func=cmd_feedback, portal=[])

    # The commands acting on one commune's records; staff accounts are found by their login.
    for p in (posters, imp_apps, status, stats, purge_parser, apikey, expired, resend,
              cast_create, cast_send, cast_status, cast_cancel, people_create, people_list,
              report_list, report_show, report_answer, report_assign, report_close):
        p.add_argument("--commune", metavar="SLUG",
                       help="a commune served here (MOTCUA_COMMUNES); default: the first")
    for p in (people_reset, people_disable):
        p.set_defaults(commune=None)

    ev = with_portal(kb.add_parser("evaluate", help="accuracy report"))
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--dialogues", action="append", default=[], metavar="FILE",
                    help="dialogue set (default: tests/data/dialogues_*.jsonl)")
    ev.add_argument("--legal", action="append", default=[], metavar="FILE",
                    help="legal-question set (default: tests/data/legal_*.jsonl)")
    ev.add_argument("questions", nargs="*",
                    help="question sets (default: tests/data/questions_*.jsonl, and "
                         "catalog_*.jsonl when a portal catalog is loaded)")
    ev.set_defaults(func=cmd_kb_evaluate)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; knowledge errors end with their message, not a traceback."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    # Text for a person at a terminal; JSON lines for a log collector (with request ids).
    logs.configure(environment().get("MOTCUA_LOG_FORMAT", "").strip() or "text")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request URL, and Telegram's URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KnowledgeError as exc:
        print(f"knowledge base error: {exc}", file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            print(f"cannot listen: the address is already in use ({exc.strerror}); stop the "
                  "other server or set MOTCUA_PORT", file=sys.stderr)
            return 3
        # The class and first line only: a driver message must not echo the database URL.
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"database unreachable or failing: {type(exc).__name__}: {first[:200]}",
              file=sys.stderr)
        return 3
