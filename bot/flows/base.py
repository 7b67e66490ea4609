"""Declaring a flow: a conversation readable as one table of steps that each fill one slot.

A flow is a class. Its steps are class attributes, so each step's state reads "Flow:slot"
(aiogram's idea), and the class body is the whole conversation (python-telegram-bot's idea):

    @register
    class Complaint(Flow):
        name = "complaint"                 # the state prefix and the registry name
        kind = "complaint"                 # the ticket kind finish() writes
        intents = ("complaint",)           # classifier intents that start it
        menu_keys = ("MENU_COMPLAINT",)    # menu CLICK keys that start it
        menu_number = "1"                  # the digit in the service menu

        category = Step("complaint.ask.category", choices=CATEGORIES)
        place = Step("complaint.ask.place", parse=parsers.place, accepts=LOCATION,
                     prefill=from_profile_address, edit_words=("改地址", "地址错了"))
        photos = Step("complaint.ask.photos", collect=True, optional=True, accepts=IMAGES)

        async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
            ticket = await create_and_dispatch(ctx, self, fields=slots, ...)
            return ...

Every step names its slot (the attribute name), its prompt (a key in config/messages.toml),
how an answer is read (`parse` raising `Invalid`, or numbered `choices`), whether it is
`optional`, when it is skipped (`prefill` from the profile or other slots, `ask_if`), which media
feed it (`accepts`), and which words at the summary edit it (`edit_words`). The engine
(bot/flows/engine.py) asks only for slots still empty, ends with a summary and a confirmation,
and calls `finish` inside the message's transaction: the ticket, its events, pushes and
reminders commit together or not at all.

Class creation refuses bad configuration with a ValueError naming the problem.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, ClassVar, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot.inbound import Inbound
from bot.services import Services
from bot.tickets import KINDS
from storage.fastsql import Transaction
from storage.models import Resident, Ticket

# Names the engine uses for its own states after the steps.
CONFIRM = "confirm"
EDIT = "edit"
SWITCH = "switch"
SUBMIT = "submit"  # everything answered and the flow submits without a summary (Flow.submits_at_once)
RESERVED = frozenset({CONFIRM, EDIT, SWITCH, SUBMIT, "name", "kind", "steps", "finish", "title"})

TEXT = frozenset({"text", "voice"})
IMAGES = frozenset({"text", "voice", "image"})
LOCATION = frozenset({"text", "voice", "location"})

MAX_CHOICES = 12  # numbered options a resident can still read on a phone
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Invalid(ValueError):
    """An answer a step cannot take; `hint` is the messages.toml key of what to tell the resident,
    `values` what its placeholders say."""

    def __init__(self, hint: str = "flow.hint.default", **values: Any) -> None:
        super().__init__(hint)
        self.hint = hint
        self.values = values


@dataclass(frozen=True)
class Choice:
    """One numbered option: the stored value, the label residents read, and other words for it."""

    value: str
    label: str
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What a parser reads: the text (typed or recognised), the whole message, and local now."""

    text: str
    inbound: Inbound
    now: datetime  # local time in the community's timezone


def adopt_resident(session: AsyncSession, row: Mapping[str, Any]) -> Resident:
    """The resident row just read or written (column → value) as an object in session, as if a
    query had loaded it: clean, so only later changes are flushed. When the session already holds
    the resident (a flow queried it), that object is the one, changes and all."""
    held = session.sync_session.identity_map.get(session.sync_session.identity_key(Resident, row["id"]))
    if held is not None:
        return cast(Resident, held)
    loaded = Resident(**row)
    make_transient_to_detached(loaded)
    return session.sync_session.merge(loaded, load=False)


@dataclass(frozen=True)
class Context:
    """One message being handled: services, its transaction, the resident.

    `tx` is the message's transaction (storage.message_tx) or simply an open session;
    `ctx.session` is a session in that transaction, made on first use: a message that writes
    only the fixed rows of the reply path never opens one.

    `resident_row` is the resident as an ORM object, or as the row the reply path read (column →
    value); `ctx.resident` makes the object on first use, already in the session, so flows can
    change it. Most messages never touch it and skip that cost."""

    svc: Services
    tx: AsyncSession | Transaction
    resident_row: Resident | Mapping[str, Any]
    inbound: Inbound
    now: datetime  # aware UTC
    tickets: list[Ticket] = field(default_factory=list)  # written while handling this message

    @functools.cached_property
    def session(self) -> AsyncSession:
        """The session of this message's transaction (ORM reads and writes commit with it)."""
        return self.tx if isinstance(self.tx, AsyncSession) else self.tx.session

    @functools.cached_property
    def resident(self) -> Resident:
        """The resident, in this message's session."""
        if isinstance(self.resident_row, Resident):
            return self.resident_row
        return adopt_resident(self.session, self.resident_row)

    @property
    def profile(self) -> Resident:
        """The resident's fields, for reading (prefills): the object once a flow made it, else
        the row as read on arrival, without making an object."""
        if isinstance(self.resident_row, Resident) or "resident" in vars(self):
            return self.resident
        return cast(Resident, SimpleNamespace(**self.resident_row))

    @property
    def openid(self) -> str:
        """The resident's openid."""
        return self.inbound.openid

    def text(self, key: str, **values: Any) -> str:
        """A message from config/messages.toml."""
        return self.svc.texts.get(key, **values)


Parser = Callable[[Answer], Any]
Prefill = Callable[[dict[str, Any], Resident], Any]
AskIf = Callable[[dict[str, Any]], bool]
Show = Callable[[Any], str]
# An answer's check that needs the database (a booking slot still free): a refusal text, or None.
Check = Callable[["Context", dict[str, Any], Any], Awaitable[str | None]]


@dataclass(frozen=True)
class Step:
    """One question of a flow; the attribute name it is assigned to is its slot."""

    prompt: str
    parse: Parser | None = None
    choices: tuple[Choice, ...] = ()
    optional: bool = False
    hint: str = ""
    accepts: frozenset[str] = TEXT
    collect: bool = False  # a list slot: each message adds to it, a 'done' word ends it
    prefill: Prefill | None = None  # a value from the profile or other slots skips the question
    ask_if: AskIf | None = None  # asked (and shown) only when this says so
    edit_words: tuple[str, ...] = ()
    label: str = ""  # messages key of the summary label; default "<flow>.labels.<slot>"
    show: Show | None = None
    # Run on an answer the step could read; a refusal is shown with the question again, and the
    # same answer given again right after is then taken as it is (the resident insists).
    check: Check | None = None
    slot: str = field(default="", compare=False)
    state: str = field(default="", compare=False)

    def __set_name__(self, owner: type, name: str) -> None:
        flow = getattr(owner, "name", "")
        if self.slot:
            return  # a Step reused elsewhere: _validate refuses it with a clear message
        object.__setattr__(self, "slot", name)
        object.__setattr__(self, "state", f"{flow}:{name}")
        if not self.label:
            object.__setattr__(self, "label", f"{flow}.labels.{name}")

    def display(self, value: Any) -> str:
        """The slot value as residents and staff read it in a summary."""
        if self.show is not None:
            return self.show(value)
        if self.choices:
            for choice in self.choices:
                if choice.value == value:
                    return choice.label
        if isinstance(value, list):
            return str(len(value))
        return "" if value is None else str(value)


class Flow:
    """Base of every flow: subclasses declare steps as attributes and implement `finish`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # ticket kind written by finish ("" for flows that write none)
    title: ClassVar[str] = ""  # messages key of the flow's name ("flow.titles.<name>" by default)
    intents: ClassVar[tuple[str, ...]] = ()
    related: ClassVar[tuple[str, ...]] = ()  # intents its answers often sound like: never a switch
    menu_keys: ClassVar[tuple[str, ...]] = ()
    menu_number: ClassVar[str] = ""
    commands: ClassVar[tuple[str, ...]] = ()  # command names (bot/flows/commands.py) that start it
    confirm_prompt: ClassVar[str] = "flow.confirm"
    edit_examples: ClassVar[tuple[str, ...]] = ()  # edit words the summary suggests (改地址, 电话不对)
    declined: ClassVar[str] = ""  # messages key: 否 at the confirmation ends the flow with it (no edit menu)
    confirm_words: ClassVar[tuple[str, ...]] = ()  # words besides yes that confirm its summary (取消 at 要取消这个预约吗)
    first_ask_only: ClassVar[tuple[str, ...]] = ()  # prompt_values keys blank when a question is asked again
    steps: ClassVar[tuple[Step, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        steps = tuple(v for v in cls.__dict__.values() if isinstance(v, Step))
        cls.steps = steps
        if not cls.title:
            cls.title = f"flow.titles.{cls.name}"
        _validate(cls)

    # Hooks a flow may override -------------------------------------------------------------

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """Slots from the classifier (and the opening text) this flow keeps; default: its own."""
        return {s.slot: slots[s.slot] for s in self.steps if slots.get(s.slot) not in (None, "", [])}

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """Placeholders of this flow's questions besides every step's answer as shown (slot name);
        those named in `first_ask_only` are said when the question is first asked, not again."""
        return {}

    def preface(self, ctx: Context, slots: dict[str, Any]) -> str | None:
        """Text said before the first question (e.g. what to do right now in an emergency)."""
        return None

    def asked(self, ctx: Context, topic: str, slots: dict[str, Any], said: str) -> str | None:
        """Its own answer to a short question about how it goes (config/flows.toml [asked] topic)
        when the answers so far decide it (助浴要钱吗: that service's fee); None: messages.toml's
        flow.asked.<flow>.<topic>, if any."""
        return None

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | None:
        """A change to an earlier answer said while step is asked (改成后天 while a name is asked):
        the slots after it and what to say before asking step again; None when text is not one."""
        return None

    def submits_at_once(self, slots: dict[str, Any]) -> bool:
        """Whether, with nothing left to ask, the request is submitted without its summary and
        确认 (an emergency: no message more before anyone is told); default: never."""
        return False

    async def at_summary(self, ctx: Context, slots: dict[str, Any], text: str) -> Any:
        """Its own reading of a message at the summary (取消预约 at 要把这个预约改到…吗: the
        booking's cancellation asked instead): an engine Outcome, or None to read it as usual."""
        return None

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Write what the flow produced (in ctx.session's transaction) and return the reply."""
        raise NotImplementedError

    # Helpers -------------------------------------------------------------------------------

    def step(self, slot: str) -> Step:
        """The step that fills slot."""
        for step in self.steps:
            if step.slot == slot:
                return step
        raise KeyError(f"flow {self.name!r} has no step {slot!r}")

    def state(self, part: str) -> str:
        """The stored state string for a step or an engine state ("complaint:confirm")."""
        return f"{self.name}:{part}"

    def media_step(self, msg_type: str) -> Step | None:
        """The first step that takes this kind of message (an image, a location)."""
        for step in self.steps:
            if msg_type in step.accepts:
                return step
        return None


def _validate(cls: type[Flow]) -> None:
    """Refuse a flow whose declaration cannot work, with a message that says why."""
    where = f"flow {cls.__name__}"
    if not _NAME.match(cls.name or ""):
        raise ValueError(f"{where}: name must be a lower-case identifier, got {cls.name!r}")
    if cls.kind and cls.kind not in KINDS:
        raise ValueError(f"{where}: unknown ticket kind {cls.kind!r} (one of {', '.join(KINDS)})")
    if not cls.steps:
        raise ValueError(f"{where}: declare at least one Step")
    if cls.finish is Flow.finish:
        raise ValueError(f"{where}: implement finish(ctx, slots)")
    if cls.menu_number and not (cls.menu_number.isdigit() and len(cls.menu_number) == 1):
        raise ValueError(f"{where}: menu_number must be one digit, got {cls.menu_number!r}")
    for attr, value in cls.__dict__.items():
        if isinstance(value, Step) and value.state != f"{cls.name}:{attr}":
            raise ValueError(f"{where}: step {attr!r} reuses a Step object of {value.state!r}; one Step serves two slots")
    edit_words: dict[str, Step] = {}
    for step in cls.steps:
        at = f"{where}, step {step.slot!r}"
        if step.slot in RESERVED:
            raise ValueError(f"{at}: the slot name is reserved")
        if not step.prompt:
            raise ValueError(f"{at}: a prompt (messages key) is required")
        if step.parse is not None and step.choices:
            raise ValueError(f"{at}: give either parse or choices, not both")
        if step.collect and step.choices:
            raise ValueError(f"{at}: a collecting step cannot have choices")
        if not step.accepts or not step.accepts <= {"text", "voice", "image", "location"}:
            raise ValueError(f"{at}: accepts must be a subset of text, voice, image, location")
        values = [c.value for c in step.choices]
        labels = [c.label for c in step.choices]
        if len(set(values)) != len(values) or len(set(labels)) != len(labels):
            raise ValueError(f"{at}: choice values and labels must be unique")
        if any(not c.value or not c.label for c in step.choices):
            raise ValueError(f"{at}: every choice needs a value and a label")
        if len(step.choices) > MAX_CHOICES:
            raise ValueError(f"{at}: at most {MAX_CHOICES} numbered choices")
        for word in step.edit_words:
            # Steps asking the same question for different cases (the time of each service, only
            # one of which applies) may share their edit words; other steps may not.
            other = edit_words.get(word)
            if other is not None and not (other.prompt == step.prompt and other.ask_if and step.ask_if):
                raise ValueError(f"{at}: edit word {word!r} already edits {other.slot!r}")
            edit_words[word] = step
    unknown = [w for w in cls.edit_examples if w not in edit_words]
    if unknown:
        raise ValueError(f"{where}: edit examples {unknown} are no step's edit words")

