"""Command line: ``python -m bot serve | ask | kb check | kb import-portal | kb evaluate``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.settings import Settings
from knowledge.answer import Assistant
from knowledge.loader import KnowledgeBase, KnowledgeError, load_knowledge, load_procedures
from knowledge.portal import read_portal, write_toml
from knowledge.schema import Procedure

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


def build_knowledge(portal: Sequence[Path], commune: str) -> KnowledgeBase:
    """The bundled knowledge base plus the imported entries."""
    return load_knowledge(imported=load_imported(portal), commune=commune)


def _settings_and_kb(args: argparse.Namespace) -> tuple[Settings, KnowledgeBase]:
    settings = Settings.from_env()
    portal = [*settings.portal_files, *args.portal]
    return settings, build_knowledge(portal, settings.commune)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web server (web chat on localhost by default)."""
    from aiohttp import web

    from bot.web import create_app

    settings, kb = _settings_and_kb(args)
    host, port = args.host or settings.host, args.port or settings.port
    log.info("knowledge base: %d procedures, %d FAQ entries", len(kb.procedures), len(kb.faqs))
    log.info("web chat on http://%s:%d/", host, port)
    web.run_app(create_app(Assistant(kb)), host=host, port=port, print=None)
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
    _, kb = _settings_and_kb(args)
    assistant = Assistant(kb)
    for question in _questions(args):
        answer = assistant.ask(question, top=args.top)
        if args.json:
            print(json.dumps(answer.contract(), ensure_ascii=False))
        else:
            print(answer.answer, end="\n\n")
    return 0


def cmd_kb_check(args: argparse.Namespace) -> int:
    """Validate the bundled knowledge base (and imports); print what was loaded."""
    _, kb = _settings_and_kb(args)
    print(f"{len(kb.bundled_codes)} bundled procedures, "
          f"{len(kb.procedures) - len(kb.bundled_codes)} imported, {len(kb.faqs)} FAQ entries, "
          f"commune: {kb.commune.name}")
    return 0


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
    from knowledge.evaluate import evaluate_files, render

    _, kb = _settings_and_kb(args)
    report = evaluate_files(Assistant(kb), [Path(p) for p in args.questions])
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render(report))
    return 0


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
    serve.set_defaults(func=cmd_serve)

    ask = with_portal(sub.add_parser("ask", help="answer a question"))
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--top", type=int, default=3)
    ask.add_argument("--batch", metavar="FILE", help="one question per line")
    ask.add_argument("question", nargs="*")
    ask.set_defaults(func=cmd_ask)

    kb = sub.add_parser("kb", help="knowledge base").add_subparsers(dest="kb", required=True)
    with_portal(kb.add_parser("check", help="validate")).set_defaults(func=cmd_kb_check)
    imp = kb.add_parser("import-portal", help="convert a portal export to TOML entries")
    imp.add_argument("file")
    imp.add_argument("--out", default="data/portal")
    imp.set_defaults(func=cmd_kb_import)
    default_sets = sorted(str(p) for p in Path("tests/data").glob("questions_*.jsonl"))
    ev = with_portal(kb.add_parser("evaluate", help="accuracy report"))
    ev.add_argument("--json", action="store_true")
    ev.add_argument("questions", nargs="*", default=default_sets)
    ev.set_defaults(func=cmd_kb_evaluate)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; knowledge errors end with their message, not a traceback."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KnowledgeError as exc:
        print(f"knowledge base error: {exc}", file=sys.stderr)
        return 2
