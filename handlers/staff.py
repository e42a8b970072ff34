"""Staff in the chats: a Telegram account linked to a console account speaks for it.

The console shows a one-time code (``storage.staff.new_link_code``); the staff member sends
"/lienket CODE" to the bot. Once anyone in the commune has linked an account, the staff group's
commands and replies to citizens are accepted only from linked, enabled accounts, and are
recorded under the console login, so the group and the console share one set of staff and roles.
Before that, the group's members are the staff (the group is the commune's to manage).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from handlers.applications import Office
from storage import staff
from storage.db import session_scope


@dataclass(frozen=True)
class ChatStaff:
    """Who wrote in the staff group: ``actor`` names them in the audit log and as officer;
    ``refused`` when linking is in use and this chat account is not an enabled linked one."""

    actor: str
    refused: bool = False


async def link_telegram(office: Office, *, code: str, user_id: str,
                        now: dt.datetime) -> str | None:
    """Link the Telegram user to the account whose one-time code this is; its display name,
    or None when the code is wrong, used or expired."""
    async with session_scope(office.sessions) as session:
        account = await staff.link_telegram(session, commune_id=office.commune_id, code=code,
                                            user_id=user_id, now=now)
        if account is None:
            return None
        await staff.audit(session, commune_id=office.commune_id, actor=f"staff:{account.login}",
                          action="staff.link_telegram", target=f"telegram:{user_id}", at=now)
        return account.display_name


async def telegram_staff(office: Office, user_id: str) -> ChatStaff:
    """Who the Telegram user ``user_id`` writing in the staff group is, for this commune."""
    async with session_scope(office.sessions) as session:
        links = await staff.telegram_links(session, commune_id=office.commune_id)
    if not links:
        return ChatStaff(f"telegram:{user_id}")
    account = links.get(user_id)
    if account is None or account.disabled:
        return ChatStaff(f"telegram:{user_id}", refused=True)
    return ChatStaff(f"staff:{account.login}")
