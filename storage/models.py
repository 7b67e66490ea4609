"""SQLAlchemy 2 models: residents, conversation log, tickets and their history, outbox,
reminders, bookings, volunteers, roster, console users, audit log and the embedded key-value
store. The same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrement works) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always hands back aware UTC datetimes (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --- residents and conversation ---------------------------------------------------------------


class Resident(Base):
    """A follower of the official account, known by openid."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    building: Mapped[str | None] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(16))
    room: Mapped[str | None] = mapped_column(String(16))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    # The customer-service window (bot.cs_window): the last message (48 hours), and the last
    # interaction of any kind that opens a window with what it was (a follow, scan or click: 1 minute).
    last_message_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    window_opened_by: Mapped[str | None] = mapped_column(String(16))  # message | subscribe | scan | click
    erased_at: Mapped[datetime | None]
    # The dialog in progress (bot.flows.state.DialogState's stored form), or NULL: read with the
    # resident on arrival and written in the same transaction as the message.
    dialog: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Message(Base):
    """One message of a conversation, either direction, resident or staff side."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_openid_at", "openid", "created_at"),
        # One WeChat delivery is handled once, whatever the state store remembers (see bot.dialog).
        Index("uq_messages_delivery", "delivery", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    msg_type: Mapped[str] = mapped_column(String(32))  # text, voice, image, event:unsubscribe, push ...
    content: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[dict[str, Any] | None]  # media_id, pic_url, location ...
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    author: Mapped[str | None] = mapped_column(String(64))  # staff username for console answers
    # The WeChat delivery this row records ("openid:MsgId", its reply "…#reply"); None otherwise.
    delivery: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class InboundDedup(Base):
    """A WeCom callback's first answer, kept per delivery key (bot.channels.wecom): a retry the
    state store forgot is answered from here. Purged after dedup_ttl_s (bot.schedule)."""

    __tablename__ = "inbound_dedup"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


# --- tickets ------------------------------------------------------------------------------------


class Ticket(Base):
    """A resident's request with a number, a kind, a status and an owner."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_resident", "resident"),
        Index("ix_tickets_assignee", "assignee"),
        Index("ix_tickets_building_category", "building", "category"),
        # The duplicate search: one category's reports of the last hours (without it, every
        # active ticket was read and row-locked for each new complaint).
        Index("ix_tickets_category_created", "category", "created_at"),
        # The duplicate search proper: one category's reports at one building (building_key).
        Index("ix_tickets_duplicate", "category", "building_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    resident: Mapped[str | None] = mapped_column(String(64))  # openid; None once erased
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(24))
    urgency: Mapped[str] = mapped_column(String(16), default="normal")  # urgent|utility|normal|complex
    building: Mapped[str | None] = mapped_column(String(16))
    # The building as routing compares it (bot.roster.normalize_building), set with building.
    building_key: Mapped[str | None] = mapped_column(String(16))
    grid: Mapped[str | None] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))  # 同一问题多人反映
    reporters: Mapped[int] = mapped_column(Integer, default=1)
    proactive: Mapped[bool] = mapped_column(Boolean, default=False)  # 主动治理
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    accept_due_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1..5
    satisfaction_label: Mapped[str | None] = mapped_column(String(8))  # 满意|基本满意|不满意|未评价
    rating_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", lazy="raise"
    )


class TicketEvent(Base):
    """One step of a ticket's history; appended, never changed."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))  # resident:<hash>, worker id, staff user, system
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]

    ticket: Mapped[Ticket] = relationship(back_populates="events", lazy="raise")


class TicketCounter(Base):
    """Per-day sequence behind human-friendly ticket numbers (20261123-0007)."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# --- outbound -----------------------------------------------------------------------------------


class OutboxItem(Base):
    """A push waiting to be sent (or sent): WeChat custom/template, WeCom app, group robot."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_channel_target", "channel", "target"),
        Index("ix_outbox_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # wechat | wecom | group
    target: Mapped[str] = mapped_column(String(128))  # openid | wecom userid | group key
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sending|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_via: Mapped[str | None] = mapped_column(String(16))  # custom | template | app | robot
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Reminder(Base):
    """A durable scheduled message: due time, kind, target and the cause it depends on."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_state_due", "state", "due_at"),
        # A resident's pending idle nudge is moved by every message of a flow (bot.dialog).
        Index("ix_reminders_target_kind", "target", "kind"),
        # A cause's reminders: counted when a booking adds its own, dropped when it goes away.
        Index("ix_reminders_cause", "cause_type", "cause_id"),
        UniqueConstraint("dedup_key", name="uq_reminders_dedup"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    target: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cause_type: Mapped[str | None] = mapped_column(String(24))  # ticket | booking | activity | flow
    cause_id: Mapped[int | None] = mapped_column(BigId)
    dedup_key: Mapped[str | None] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|done|dropped|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


# --- services -----------------------------------------------------------------------------------


class Booking(Base):
    """An elderly-service booking (助餐, 日托, 助浴 …) made through a ticket."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_service_start", "service", "start_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    resident: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(64))
    for_name: Mapped[str | None] = mapped_column(String(64))
    for_age: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(128))
    start_at: Mapped[datetime]
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="booked")  # booked|waitlist|cancelled|done
    created_at: Mapped[datetime]


class Volunteer(Base):
    """A registered volunteer (志愿者) or reporting party member (党员报到)."""

    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    skills: Mapped[str | None] = mapped_column(Text)
    availability: Mapped[str | None] = mapped_column(Text)
    areas: Mapped[list[Any]] = mapped_column(JSON, default=list)
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|approved|rejected
    hours: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime]


class Activity(Base):
    """A volunteer activity residents can sign up for."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(128))
    place: Mapped[str] = mapped_column(String(128), default="")
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]
    # Called off (取消活动): when, by whom (a roster id, or "config" when taken out of
    # config/activities.toml with nobody signed up) and the reason residents were told.
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))


class ActivitySignup(Base):
    """A resident signed up for an activity."""

    __tablename__ = "activity_signups"
    __table_args__ = (UniqueConstraint("activity_id", "openid", name="uq_signup"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="signed")  # signed|cancelled
    created_at: Mapped[datetime]


# --- announced outages ----------------------------------------------------------------------------


class Outage(Base):
    """A water, power, gas or heating outage staff announced (bot.outages): which buildings (none
    listed: the whole community), why, when it should end, and when it did."""

    __tablename__ = "outages"
    __table_args__ = (
        Index("ix_outages_status_ended", "status", "ended_at"),
        # One active announcement per kind and stated buildings: the same announcement made at once
        # in two processes (two workers, two API calls) is one row (bot.outages.announce).
        Index("uq_outages_active_scope", "kind", "scope_key", unique=True,
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # water | power | gas | heat
    buildings: Mapped[list[Any]] = mapped_column(JSON, default=list)  # building keys; [] = 全小区
    scope_key: Mapped[str] = mapped_column(String(400), default="*")  # the buildings as "3,4,5"; "*" = 全小区
    excluded: Mapped[list[Any]] = mapped_column(JSON, default=list)  # 全小区 but these (ended or announced apart)
    reason: Mapped[str] = mapped_column(Text, default="")
    expected_end: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | ended | merged (into a newer one)
    created_by: Mapped[str] = mapped_column(String(64))
    ended_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class OutageRegistration(Base):
    """A resident who reported an announced outage and asked to be told when it ends."""

    __tablename__ = "outage_registrations"
    __table_args__ = (UniqueConstraint("outage_id", "openid", name="uq_outage_registration"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("outages.id"))
    openid: Mapped[str] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(16))  # the building key they were matched by
    created_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]


# --- roster -------------------------------------------------------------------------------------


class Grid(Base):
    """A grid (网格): a few buildings, the common places it covers, and its grid workers."""

    __tablename__ = "grids"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    buildings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    workers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # 小区西门, 中心广场: a report naming no building but one of these goes to this grid
    places: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")


class Person(Base):
    """Someone on the roster, known by WeCom userid, with roles and (for providers) services."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    services: Mapped[list[Any]] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# --- console ------------------------------------------------------------------------------------


class StaffUser(Base):
    """A console login: bcrypt hash, role, lockout after repeated failures."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # admin | staff | readonly
    wecom_userid: Mapped[str | None] = mapped_column(String(64))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]


class AuditLog(Base):
    """Every staff (and worker) action, who did what to which thing, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


# --- embedded key-value store ---------------------------------------------------------------------


class KeyValue(Base):
    """The embedded state store: dialog state, locks' companions, token cache, with expiry."""

    __tablename__ = "kv_store"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
