"""Staff accounts, their console sessions and the audit log of what staff did.

Passwords are stored as argon2id hashes (argon2-cffi's defaults); console session tokens as
their SHA-256, so neither a database dump nor a log gives a way in. Hashing runs in a thread:
it takes tens of milliseconds of CPU on purpose.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEntry, ConsoleSession, StaffAccount

Role = Literal["admin", "officer", "province"]
ROLES: tuple[Role, ...] = ("admin", "officer", "province")
LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # hashing a megabyte-long "password" would be a cheap way to load the CPU
SESSION_LIFETIME = dt.timedelta(hours=12)  # a working day, then sign in again
IDLE_TIMEOUT = dt.timedelta(hours=2)  # a console left open on a shared office computer
SEEN_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often

_hasher = PasswordHasher()
# Verified against when the login is unknown or disabled, so that answer takes as long as a
# wrong password does.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(ValueError):
    """A staff account request that cannot be done (its message says why, for the CLI)."""


@dataclass(frozen=True)
class SignedIn:
    """A valid console session and its account."""

    account: StaffAccount
    session: ConsoleSession


def normalize_login(login: str) -> str:
    """How a login name is stored and compared: trimmed, lower case."""
    return login.strip().lower()


def check_password(password: str) -> None:
    """StaffError unless ``password`` is long enough (and not absurdly long)."""
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StaffError(f"the password must have at most {MAX_PASSWORD} characters")


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (checked first)."""
    check_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def account_by_login(session: AsyncSession, login: str) -> StaffAccount | None:
    """The account with this login name, disabled or not."""
    query = select(StaffAccount).where(StaffAccount.login == normalize_login(login))
    return (await session.exec(query)).first()


async def create_account(session: AsyncSession, *, commune_id: int, login: str,
                         display_name: str, role: Role, password: str,
                         now: dt.datetime) -> StaffAccount:
    """A new account; StaffError when the login is taken or malformed, or the password short."""
    login = normalize_login(login)
    if not LOGIN.fullmatch(login):
        raise StaffError("a login name is 2-64 letters a-z, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise StaffError(f"the role must be one of {', '.join(ROLES)}")
    if not display_name.strip() or len(display_name) > 200:
        raise StaffError("the name must be 1-200 characters")
    if await account_by_login(session, login) is not None:
        raise StaffError(f"the login '{login}' is taken")
    account = StaffAccount(commune_id=commune_id, login=login, display_name=display_name.strip(),
                           role=role, password_hash=await hash_password(password),
                           created_at=now, updated_at=now)
    session.add(account)
    await session.flush()
    return account


async def set_password(session: AsyncSession, account: StaffAccount, password: str, *,
                       now: dt.datetime) -> None:
    """Replace the password and end every session of the account."""
    account.password_hash = await hash_password(password)
    account.updated_at = now
    session.add(account)
    await end_all_sessions(session, account_id=_id(account))


async def disable(session: AsyncSession, account: StaffAccount, *, now: dt.datetime) -> None:
    """Refuse the account's sign-ins from now on, and end its sessions."""
    account.disabled = True
    account.updated_at = now
    session.add(account)
    await end_all_sessions(session, account_id=_id(account))


async def list_accounts(session: AsyncSession, *,
                        commune_id: int | None = None) -> Sequence[StaffAccount]:
    """The accounts, of one commune or all, by login name."""
    query = select(StaffAccount).order_by(col(StaffAccount.login))
    if commune_id is not None:
        query = query.where(StaffAccount.commune_id == commune_id)
    return (await session.exec(query)).all()


async def authenticate(session: AsyncSession, *, login: str,
                       password: str) -> tuple[StaffAccount | None, bool]:
    """``(account, True)`` when the password is right and the account enabled; otherwise
    ``(account or None, False)``. An unknown login costs the same time as a wrong password."""
    account = await account_by_login(session, login)
    if account is None or len(password) > MAX_PASSWORD:
        await _verify(_DUMMY_HASH, password[:MAX_PASSWORD])
        return account, False
    right = await _verify(account.password_hash, password)
    return account, right and not account.disabled


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _id(account: StaffAccount) -> int:
    assert account.id is not None, "the account is saved"
    return account.id


async def open_session(session: AsyncSession, account: StaffAccount, *,
                       now: dt.datetime) -> str:
    """A new console session for ``account``: the token for its cookie (only its hash is
    kept)."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(account_id=_id(account), token_hash=_token_hash(token),
                               created_at=now, last_seen_at=now,
                               expires_at=now + SESSION_LIFETIME))
    await session.flush()
    return token


async def signed_in(session: AsyncSession, token: str, *, now: dt.datetime) -> SignedIn | None:
    """The session and enabled account behind a cookie token, unless expired or idle too
    long; notes that it was seen."""
    if not token or len(token) > 100:
        return None
    query = (select(ConsoleSession, StaffAccount)
             .join(StaffAccount, col(StaffAccount.id) == col(ConsoleSession.account_id))
             .where(ConsoleSession.token_hash == _token_hash(token)))
    found = (await session.exec(query)).first()
    if found is None:
        return None
    console_session, account = found
    if (account.disabled or now >= console_session.expires_at
            or now - console_session.last_seen_at >= IDLE_TIMEOUT):
        return None
    if now - console_session.last_seen_at >= SEEN_EVERY:
        console_session.last_seen_at = now
        session.add(console_session)
    return SignedIn(account, console_session)


async def end_session(session: AsyncSession, token: str) -> None:
    """Sign one browser out."""
    connection = await session.connection()
    await connection.execute(delete(ConsoleSession).where(
        col(ConsoleSession.token_hash) == _token_hash(token)))


async def end_all_sessions(session: AsyncSession, *, account_id: int) -> int:
    """Sign the account out everywhere; how many sessions were ended."""
    connection = await session.connection()
    result = await connection.execute(delete(ConsoleSession).where(
        col(ConsoleSession.account_id) == account_id))
    return int(result.rowcount)


def csrf_token(token: str) -> str:
    """The form token of a console session: derived from its cookie token, which only the
    browser holds (not from the stored hash), so a page of another site cannot know it."""
    return hashlib.sha256(b"csrf:" + token.encode()).hexdigest()


async def audit(session: AsyncSession, *, commune_id: int, actor: str, action: str,
                target: str = "", detail: str = "", at: dt.datetime) -> None:
    """Record that ``actor`` did ``action`` to ``target`` in a commune."""
    session.add(AuditEntry(commune_id=commune_id, actor=actor[:120], action=action[:64],
                           target=target[:200], detail=detail, at=at))


# Linking a staff member's Telegram account: the console shows a one-time code, the staff
# member sends "/lienket CODE" to the bot; from then on the bot knows who wrote in the staff group.
LINK_CODE_LIFETIME = dt.timedelta(minutes=15)
_LINK_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen, typed
LINK_CODE = re.compile(rf"[{_LINK_LETTERS}]{{8}}")


async def new_link_code(session: AsyncSession, account: StaffAccount, *,
                        now: dt.datetime) -> str:
    """A fresh one-time code for ``account`` (the previous one stops working)."""
    code = "".join(secrets.choice(_LINK_LETTERS) for _ in range(8))
    account.link_code_hash = _token_hash(code)
    account.link_code_expires_at = now + LINK_CODE_LIFETIME
    session.add(account)
    return code


async def link_telegram(session: AsyncSession, *, commune_id: int, code: str, user_id: str,
                        now: dt.datetime) -> StaffAccount | None:
    """Link the Telegram user ``user_id`` to the enabled account of ``commune_id`` whose
    unexpired code this is (used up); None when no account has it."""
    code = code.strip().upper()
    if not LINK_CODE.fullmatch(code):
        return None
    query = select(StaffAccount).where(col(StaffAccount.commune_id) == commune_id,
                                       col(StaffAccount.link_code_hash) == _token_hash(code),
                                       col(StaffAccount.link_code_expires_at) > now,
                                       col(StaffAccount.disabled).is_(False))
    account = (await session.exec(query)).first()
    if account is None:
        return None
    for other in (await session.exec(select(StaffAccount).where(
            col(StaffAccount.telegram_id) == user_id, col(StaffAccount.id) != account.id))).all():
        other.telegram_id = None  # one Telegram account speaks for one staff member
        session.add(other)
    await session.flush()
    account.telegram_id = user_id
    account.link_code_hash = account.link_code_expires_at = None
    account.updated_at = now
    session.add(account)
    await session.flush()
    return account


async def unlink_telegram(session: AsyncSession, account: StaffAccount, *,
                          now: dt.datetime) -> None:
    """Forget the account's Telegram identity."""
    account.telegram_id = None
    account.updated_at = now
    session.add(account)


async def telegram_links(session: AsyncSession, *, commune_id: int) -> dict[str, StaffAccount]:
    """The commune's accounts with a linked Telegram identity, by that identity (disabled
    accounts included: their holder is refused, not treated as unknown)."""
    query = select(StaffAccount).where(col(StaffAccount.commune_id) == commune_id,
                                       col(StaffAccount.telegram_id).is_not(None))
    return {a.telegram_id: a for a in (await session.exec(query)).all() if a.telegram_id}
