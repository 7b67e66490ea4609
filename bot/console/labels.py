"""Chinese labels and local times for console templates (wording from config/messages.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bot.clock import local
from bot.privacy import mask_phone
from bot.texts import Texts


SHARED_TYPES = ("link", "file", "other")  # what a resident shares that has a title (and a link its address)


@dataclass(frozen=True)
class Shared:
    """A link, a file or a mini-program card a resident sent, as a ticket's history shows it:
    marked ([链接]), its title, and a link's address — to open only when it is http(s)."""

    mark: str
    title: str
    url: str = ""
    href: str = ""  # the address to open; '' for javascript:, data: and anything not http(s)
    size: str = ""  # a file's size in words (12 KB)


def shared_words(msg_type: str, media: dict[str, Any] | None) -> str:
    """What a shared link, file or card says without its mark (its title, and a link's address),
    as dialog writes it after the mark on a hand-off awaited ([链接] 标题 https://…): one line."""
    media = media or {}
    return " ".join(p for p in (str(media.get("title") or "").strip(), str(media.get("url") or "").strip()) if p)


def openable(url: str) -> str:
    """The address itself when a browser may open it from the console (http or https with a host), else ''."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc and not any(c.isspace() for c in url) else ""


def _size(raw: Any) -> str:
    """A file's length in bytes (WeChat's FileTotalLen) in words: 900 B, 12 KB, 3.4 MB; '' when not a number."""
    try:
        n = int(str(raw or "").strip())
    except ValueError:
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{round(n / 1024)} KB"
    return f"{n / 1024 / 1024:.1f} MB"


@dataclass(frozen=True)
class Labels:
    """What templates call to show statuses, kinds, actions, reasons, roles and times."""

    texts: Texts
    tz: str
    reveal: bool = False  # full phone numbers: staff call residents back; read-only users see them masked

    def _get(self, key: str, name: str) -> str:
        full = f"{key}.{name}"
        return self.texts.get(full) if self.texts.has(full) else name

    def status(self, name: str | None) -> str:
        """A ticket status, e.g. 已派单."""
        return self._get("staff_actions.status", name or "")

    def action(self, name: str) -> str:
        """A staff action or ticket event, e.g. 派单, 备注 (never the raw name: 其他记录)."""
        if self.texts.has(f"staff_actions.action.{name}"):
            return self.texts.get(f"staff_actions.action.{name}")
        key = f"console.events.{name}" if self.texts.has(f"console.events.{name}") else "console.events.other"
        return self.texts.get(key)

    def event(self, action: str, data: dict[str, Any] | None) -> str:
        """A ticket event in a timeline: as action says, but a breach by the limit it names, in
        the words of the badges (接单超时, 超期), and a 派单 away from someone who held it 改派."""
        limit = (data or {}).get("limit")
        if action == "overdue" and isinstance(limit, str) and self.texts.has(f"console.reasons.{limit}"):
            return self.reason(limit)
        if action == "assign" and (data or {}).get("previous"):
            return self.texts.get("console.events.reassign")  # given on from someone who held it
        return self.action(action)

    def inbound(self, msg_type: str) -> str:
        """What a resident did that is not text (a follow, an unfollow, a photo …), in words."""
        name = msg_type.removeprefix("event:")
        key = f"console.inbound.{name}" if self.texts.has(f"console.inbound.{name}") else "console.inbound.other"
        return self.texts.get(key)

    def shared(self, msg_type: str, media: dict[str, Any] | None) -> Shared | None:
        """A link, file or card the resident sent, marked as such ([链接] 标题 and its address), for
        the timeline — it showed the link's title alone, as if the resident had typed it; None for
        any other message. Phones masked unless the user may reveal them."""
        if msg_type not in SHARED_TYPES:
            return None
        media = media or {}
        url = str(media.get("url") or "").strip() if msg_type == "link" else ""
        return Shared(self.inbound(msg_type), self.said(str(media.get("title") or "").strip()), self.said(url),
                      openable(url), _size(media.get("size")) if msg_type == "file" else "")

    def kind(self, name: str | None) -> str:
        """A ticket kind, e.g. 投诉报修."""
        return self._get("dispatch.kinds", name or "")

    def reason(self, name: str) -> str:
        """Why a ticket is in the queue."""
        return self._get("console.reasons", name)

    def role(self, name: str) -> str:
        """A console role."""
        return self._get("console.roles", name)

    def urgency(self, name: str | None) -> str:
        """A ticket's urgency."""
        return self._get("console.urgency", name or "")

    def said(self, text: str | None) -> str:
        """What a resident (or anyone about them) wrote, as this user may see it: phones masked
        unless the user may reveal them."""
        text = text or ""
        return text if self.reveal else mask_phone(text)

    def push_error(self, errcode: int | None, attempts: int) -> str:
        """Why a push to a resident never arrived, in plain words (WeChat's errcode when known)."""
        key = f"console.push_errors.e{errcode}"
        if errcode is not None and self.texts.has(key):
            return self.texts.get(key)
        return self.texts.get("console.push_errors.other", attempts=attempts)

    def audit_action(self, code: str) -> str:
        """An audit log action in words (ticket.reply → 答复居民, wecom.accept.refused → 企业微信接单
        （被拒绝）: [console.audit_actions]); a code without words is shown as it is."""
        base = code.removesuffix(".refused")
        key = f"console.audit_actions.{base}"
        if base == "refused" or not self.texts.has(key):
            return code
        words = self.texts.get(key)
        return self.texts.get("console.audit_actions.refused", action=words) if base != code else words

    def audit_detail(self, detail: dict[str, Any] | None, action: str = "",
                     names: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """An audit row's detail as (what, value) in words ([console.audit_details]): a refusal's
        reason as the words the clerk was shown (else [console.audit_reasons]), statuses and ways
        of delivery named, a moment (ISO) as a local time; of an outage's or an activity's row its
        reason as staff gave it and where from (企业微信, 工作台); an outage's kind named and no
        buildings as 全小区; an owner (负责人, 原负责人) by the name the other pages show (王伟, not
        wangwei: the account is in the raw detail on hover), a reassignment's as one 负责人：孙丽 → 赵强;
        a status that stayed (改派: 原来：已派单 改为：已派单) and an empty value (说明：) left out. A
        key without words is shown as it is."""
        shown: list[tuple[str, str]] = []
        detail = dict(detail or {})
        message = str(detail.pop("message", "") or "")
        if "from" in detail and detail.get("from") == detail.get("to"):  # 改派 keeps the status: nothing to say
            del detail["from"], detail["to"]
        previous = detail.pop("previous", None) if "assignee" in detail else None
        outage = action.startswith("outage.")
        stated = (outage or action.startswith("activity.")) and not action.endswith(".refused")
        for key, value in detail.items():
            if key == "reason" and stated:  # the announcement's reason (管道抢修), a cancellation's
                shown.append((self._get("console.audit_details", "given_reason"), str(value or "—")))
                continue
            if key == "reason":
                words = self._get("console.audit_reasons", str(value))
                shown.append((self._get("console.audit_details", key), message or words))
                message = ""
                continue
            if value == "":
                continue
            when = moment(value)
            if when is not None:
                value = self.time(when)
            elif outage and key == "kind":
                value = self._get("outages.kinds", str(value))
            elif outage and key == "buildings" and value == []:
                value = self.texts.get("outages.whole")
            elif key in ("from", "to", "status"):  # a ticket's status, or a user's role (user.role)
                value = self.status(str(value)) if self.texts.has(f"staff_actions.status.{value}") else self.role(str(value))
            elif key in ("role", "needed"):
                value = self.role(str(value))
            elif key == "assignee" and isinstance(value, str):
                value = (names or {}).get(value, value)
                if isinstance(previous, str) and previous:  # 改派: 负责人：孙丽 → 赵强
                    value = self.texts.get("console.audit_details.moved", previous=(names or {}).get(previous, previous),
                                           assignee=value)
            elif key in ("previous", "owner_told") and isinstance(value, str):  # a row of its own; who was told it ended
                value = (names or {}).get(value, value)
            elif isinstance(value, str) and self.texts.has(f"console.audit_details.{key}_{value}"):  # via_custom …
                value = self.texts.get(f"console.audit_details.{key}_{value}")
            elif isinstance(value, bool):
                value = self.texts.get("console.fields.yes" if value else "console.fields.no")
            elif isinstance(value, list):  # a roster import's changes are sentences of their own lists
                value = ("；" if key == "changes" else "、").join(str(v) for v in value) or "—"
            elif value is None:
                value = "—"
            name = "given_via" if stated and key == "via" else key
            shown.append((self._get("console.audit_details", name), str(value)))
        if message:
            shown.append((self._get("console.audit_details", "message"), message))
        return shown

    def text(self, key: str, **values: object) -> str:
        """Any console wording by key under console."""
        return self.texts.get(f"console.{key}", **values)

    def actor(self, actor: str, names: dict[str, str]) -> str:
        """Who did something, as staff read it: 居民 / 系统 / a roster name / the username."""
        if actor.startswith("resident:"):
            return self.texts.get("console.actors.resident")
        if self.texts.has(f"console.actors.{actor}"):
            return self.texts.get(f"console.actors.{actor}")
        return names.get(actor, actor)

    def waited(self, since: datetime, now: datetime) -> str:
        """How long something has waited, roughly: 不到 1 分钟 (not 0 分钟), 5 分钟, 3 小时, 2 天."""
        minutes = max(0, int((now - since).total_seconds() // 60))
        if minutes < 1:
            return self.texts.get("console.waited.moment")
        if minutes < 60:
            return self.texts.get("console.waited.minutes", n=minutes)
        if minutes < 48 * 60:
            return self.texts.get("console.waited.hours", n=minutes // 60)
        return self.texts.get("console.waited.days", n=minutes // 1440)

    def time(self, when: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        """A time in the community's timezone ('' for none)."""
        return "" if when is None else local(when, self.tz).strftime(fmt)


def moment(value: Any) -> datetime | None:
    """A value that is a moment written out (2026-11-23T07:00:00+00:00: an audit detail, a booking's or
    a session's time on a ticket), else None."""
    if not isinstance(value, str) or "T" not in value or len(value) < 19:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
