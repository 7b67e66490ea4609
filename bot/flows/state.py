"""A resident's dialog state in the state store: which flow, which step, the slots so far.

Stored as JSON at `store.key("dialog", openid)` with a TTL of flow_expire_s, read and written only
while the resident's lock is held, so another worker process (or a restarted one) continues
exactly where the conversation was. `version` grows with every message handled in the flow; the
idle nudge is wanted only while it is unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from storage.models import Reminder


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


def key(svc: Services, openid: str) -> str:
    """The store key of a resident's dialog."""
    return svc.store.key("dialog", openid)


async def load(svc: Services, openid: str) -> DialogState | None:
    """The resident's live dialog, or None (none, or idle past flow_expire_s: it expires quietly)."""
    data = await svc.store.get(key(svc, openid))
    if not data:
        return None
    state = DialogState.from_json(data)
    idle = (svc.clock.now() - datetime.fromisoformat(state.updated_at)).total_seconds()
    if idle >= svc.settings.flow_expire_s:
        await svc.store.delete(key(svc, openid))
        return None
    return state


async def save(svc: Services, openid: str, state: DialogState | None) -> None:
    """Store the state (TTL flow_expire_s), or remove it when the flow ended."""
    if state is None:
        await svc.store.delete(key(svc, openid))
    else:
        await svc.store.set(key(svc, openid), state.to_json(), ttl=svc.settings.flow_expire_s)


def nudge_check(svc: Services) -> Callable[[AsyncSession, Reminder], Awaitable[bool]]:
    """The cause check of idle-flow nudges: wanted only while the dialog's version is unchanged."""

    async def check(_session: AsyncSession, reminder: Reminder) -> bool:
        state = await load(svc, reminder.target)
        return state is not None and state.version == reminder.cause_id

    return check
