"""A resident's dialog state: which flow, which step, the slots so far.

Stored as JSON in the resident's own row (`residents.dialog`): the message's first statement
(bot.dialog.arrive, which touches the resident) returns it, and the message's transaction writes
the next one, so the state moves together with the message it answers or not at all, on every
backend, and every worker process (or a restarted one) continues exactly where the conversation
was. It is read and written only while the resident's lock is held. A dialog idle for
flow_expire_s is over: it reads as none. `version` grows with every message handled in the flow;
the idle nudge is wanted only while it is unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from storage import fastsql
from storage.fastsql import Prepared, Transaction
from storage.models import Reminder, Resident


@dataclass(frozen=True)
class DialogState:
    """Where a resident is in a flow."""

    flow: str
    step: str  # "complaint:place", "complaint:confirm", "complaint:edit", "complaint:switch"
    slots: dict[str, Any]
    started_at: str  # ISO, aware UTC
    updated_at: str
    version: int
    run: str  # id of this run of the flow (one ticket per run)
    invalid: int = 0
    history: tuple[str, ...] = ()  # slots asked and answered, in order (for 返回)
    editing: bool = False  # back to the summary after the next answer
    pending: dict[str, Any] | None = None  # the intent waiting while we ask whether to switch
    opening: dict[str, Any] = field(default_factory=dict)  # slots the opening message filled

    @property
    def part(self) -> str:
        """The step (or engine state) without the flow prefix."""
        return self.step.split(":", 1)[1]

    def to_json(self) -> dict[str, Any]:
        """The stored form: a shallow dict, serialised at once by the store (asdict's deep copy of
        every slot was measurable on every message)."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["history"] = list(self.history)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialogState:
        """Read the stored form."""
        return cls(**{**data, "history": tuple(data.get("history", ()))})


_FIELDS = tuple(f.name for f in fields(DialogState))


def new_state(flow: str, step: str, now: datetime, slots: dict[str, Any] | None = None) -> DialogState:
    """A fresh run of a flow; the version starts from the clock so it never repeats for a resident."""
    stamp = now.isoformat()
    return DialogState(
        flow=flow, step=step, slots=dict(slots or {}), started_at=stamp, updated_at=stamp,
        version=int(now.timestamp() * 1000), run=uuid.uuid4().hex, opening=dict(slots or {}),
    )


def touched(state: DialogState, now: datetime) -> DialogState:
    """The state after one more message: version + 1, activity time now."""
    return replace(state, version=state.version + 1, updated_at=now.isoformat())


_RESIDENTS = Resident.__table__
SAVE = Prepared(
    update(_RESIDENTS).where(_RESIDENTS.c.openid == bindparam("v_openid")).values(dialog=bindparam("v_dialog"))
)
_READ = Prepared(select(_RESIDENTS.c.dialog).where(_RESIDENTS.c.openid == bindparam("v_openid")))


def live(svc: Services, state: DialogState | None) -> DialogState | None:
    """state, unless it has been idle past flow_expire_s (the dialog is then over)."""
    if state is None:
        return None
    idle = (svc.clock.now() - datetime.fromisoformat(state.updated_at)).total_seconds()
    return None if idle >= svc.settings.flow_expire_s else state


def stored(data: dict[str, Any] | None) -> DialogState | None:
    """The dialog in its stored form (residents.dialog), expired or not; None without one."""
    return DialogState.from_json(data) if data else None


def save_statement(openid: str, state: DialogState | None) -> tuple[Prepared, dict[str, Any]]:
    """The UPDATE that stores state (None: the dialog is over), for the message's own batch."""
    return SAVE, {"v_openid": openid, "v_dialog": None if state is None else state.to_json()}


async def read(tx: AsyncSession | Transaction, openid: str) -> DialogState | None:
    """The stored dialog of a resident, expired or not (None without one), in tx."""
    rows = (await fastsql.run(tx, _READ, {"v_openid": openid})).rows
    return stored(rows[0]["dialog"]) if rows else None


_ADOPT = Prepared(
    update(_RESIDENTS).where(_RESIDENTS.c.openid == bindparam("v_openid"), _RESIDENTS.c.dialog.is_(None))
    .values(dialog=bindparam("v_dialog"))
)


async def adopt_store_dialogs(svc: Services) -> int:
    """Move dialogs an earlier version kept in the state store (under key("dialog", openid)) into
    the residents' rows, so that an upgrade does not drop conversations in progress; returns how
    many were moved. Run at start by every process: a row that already has a dialog keeps it."""
    prefix = svc.store.key("dialog", "")
    moved = 0
    for key in await svc.store.keys(prefix):
        data = await svc.store.get(key)
        if data:
            async with svc.sessions() as session, session.begin():
                done = await fastsql.run(session, _ADOPT, {"v_openid": key[len(prefix):], "v_dialog": data})
            moved += done.rowcount
        await svc.store.delete(key)
    return moved


def nudge_check(svc: Services) -> Callable[[AsyncSession, Reminder], Awaitable[bool]]:
    """The cause check of idle-flow nudges: wanted only while the dialog's version is unchanged."""

    async def check(session: AsyncSession, reminder: Reminder) -> bool:
        state = live(svc, await read(session, reminder.target))
        return state is not None and state.version == reminder.cause_id

    return check
