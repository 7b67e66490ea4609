"""Running a declared flow: ask what is missing, read answers, summarise, confirm, finish.

Each call takes the resident's state (loaded inside the resident's lock) and the message in hand,
and returns an `Outcome`: the reply and the next state (None when the flow ended). Nothing here
touches the store; bot/dialog.py saves the state after the transaction commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot import faq
from bot.clock import local
from bot.flows.base import CONFIRM, EDIT, SUBMIT, SWITCH, Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import is_word, normalize, without_filler
from bot.flows.config import flow_config, words
from bot.flows.parsers import (
    asks, description, is_question, only_address, only_phone, phone, phones, place, place_more, says_nothing, says_what,
    typed_place, unfilled,
)
from bot.flows.state import DialogState, new_state, touched
from bot.intents.classifier import get_classifier
from bot.intents.normalize import simplified
from bot.privacy import mask_phone

MAX_INVALID = 3


@dataclass(frozen=True)
class Intent:
    """What the classifier made of a mid-flow message (only what the engine needs)."""

    intent: str
    confidence: float
    slots: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """The reply to send and the state to keep (None: the flow is over)."""

    reply: str
    state: DialogState | None


Classify = Callable[[str], Intent]


# Asking -----------------------------------------------------------------------------------------


def choices_text(step: Step) -> str:
    """The numbered options of a step."""
    return "\n".join(f"{i}. {c.label}" for i, c in enumerate(step.choices, 1))


def prompt(ctx: Context, flow: Flow, step: Step, slots: dict[str, Any], *, first: bool = False) -> str:
    """The question for a step, with its numbered choices and the skip hint when optional; asked
    again (not first), without what the flow says only the first time (Flow.first_ask_only)."""
    values = {s.slot: s.display(slots.get(s.slot)) for s in flow.steps}
    values.update(flow.prompt_values(ctx, slots))
    if not first:
        values.update(dict.fromkeys(flow.first_ask_only, ""))
    held = slots.get(step.slot)
    collected = step.collect and isinstance(held, list) and bool(held)
    if collected:  # photos sent already: not asked from scratch, nor told how to have none
        parts = [ctx.text("flow.collect_more", count=len(held))]
    else:
        parts = [ctx.text(step.prompt, **values)]
    if step.choices:
        parts.append(choices_text(step))
    if step.optional and not collected:
        parts.append(ctx.text("flow.optional"))
    return "\n".join(parts)


SHOWN_MAX = 200  # characters of one answer repeated to the resident (the whole is kept)
ELLIPSIS = "…"


def _clip(text: str, limit: int = SHOWN_MAX) -> str:
    """text cut to limit characters, with an ellipsis when cut (a 2,000-character description is
    kept whole in the ticket, but not repeated whole in every reply)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def summary(ctx: Context, flow: Flow, slots: dict[str, Any]) -> str:
    """The collected answers, one line per field asked for (long answers clipped)."""
    lines = []
    for step in shown_steps(flow, slots):
        value = slots.get(step.slot)
        shown = _clip(step.display(value)) if value not in (None, "", []) else ctx.text("flow.none")
        lines.append(f"{ctx.text(step.label)}：{shown}")
    return "\n".join(lines)


def shown_steps(flow: Flow, slots: dict[str, Any]) -> list[Step]:
    """Steps that belong in the summary (conditional steps only when they applied)."""
    return [s for s in flow.steps if s.ask_if is None or s.ask_if(slots)]


def confirm_text(ctx: Context, flow: Flow, slots: dict[str, Any]) -> str:
    """The summary and the question whether to submit."""
    examples = "“" + "”“".join(flow.edit_examples) + "”" if flow.edit_examples else ""
    edits = ctx.text("flow.edit_examples", words=examples) if examples else ""
    return ctx.text(flow.confirm_prompt, **flow.prompt_values(ctx, slots), title=ctx.text(flow.title),
                    summary=summary(ctx, flow, slots), edits=edits)


def next_step(flow: Flow, ctx: Context, slots: dict[str, Any], answered: tuple[str, ...] = ()) -> Step | None:
    """The first step still to ask; fills slots its prefill can answer on the way.

    A collecting step (photos) stays open until the resident closes it, even when a photo came
    in earlier."""
    for step in flow.steps:
        if step.slot in slots and not (step.collect and step.slot not in answered):
            continue
        if step.ask_if is not None and not step.ask_if(slots):
            continue
        if step.prefill is not None:
            value = step.prefill(slots, ctx.profile)
            if value not in (None, "", []):
                slots[step.slot] = value
                continue
        return step
    return None


def advance(ctx: Context, flow: Flow, state: DialogState, *, lead: str = "", fresh: bool = False) -> Outcome:
    """Ask the next missing step, or show the summary when nothing is missing (fresh: the flow has
    just begun, so even its first step is asked for the first time)."""
    slots = dict(state.slots)
    step = next_step(flow, ctx, slots, state.history)
    if step is None and flow.submits_at_once(slots):
        # Nothing more to ask of an emergency: submitted by submitted() before the reply goes out.
        return Outcome(lead, replace(state, step=flow.state(SUBMIT), slots=slots, invalid=0, editing=False))
    if step is None:
        text = confirm_text(ctx, flow, slots)
        new = replace(state, step=flow.state(CONFIRM), slots=slots, invalid=0, editing=False)
    else:
        text = prompt(ctx, flow, step, slots, first=fresh or step.state != state.step)
        new = replace(state, step=step.state, slots=slots, invalid=0)
    return Outcome(join_lines(lead, text), new)


async def submitted(ctx: Context, outcome: Outcome) -> Outcome:
    """The outcome of a message, with a request advance() left to submit at once (Flow.submits_at_once)
    written: what was said, then the flow's reply to its submission; any other outcome unchanged."""
    state = outcome.state
    if state is None or state.part != SUBMIT:
        return outcome
    flow = _flow_of(state)
    return Outcome(join_lines(outcome.reply, await flow.finish(ctx, dict(state.slots))), None)


def _flow_of(state: DialogState) -> Flow:
    from bot.flows import registry  # the registry imports every flow, which import this module

    flow = registry.get(state.flow)
    if flow is None:
        raise LookupError(f"no flow {state.flow!r} to submit")
    return flow


def start(ctx: Context, flow: Flow, slots: dict[str, Any], text: str = "", *, lead: str = "") -> Outcome:
    """Begin a flow with what the opening message (or a media message) already said."""
    opening = flow.opening(slots, text)
    state = new_state(flow.name, flow.state(flow.steps[0].slot), ctx.now, opening)
    preface = flow.preface(ctx, opening)
    return advance(ctx, flow, state, lead=join_lines(lead, preface or ""), fresh=True)


# Answering --------------------------------------------------------------------------------------


def match_choice(step: Step, text: str) -> Choice | None:
    """The choice a reply picks: its number, its label or a synonym, or the one it mentions."""
    norm = normalize(text)
    if norm.isdigit():
        index = int(norm)
        return step.choices[index - 1] if 1 <= index <= len(step.choices) else None
    for choice in step.choices:
        names = (choice.label, choice.value, *choice.synonyms)
        if norm in (normalize(n) for n in names):
            return choice
    # A name found inside a longer reply counts from two characters: 好 (yes) is in 好几天了, 是 in 不是.
    mentioned = [
        c for c in step.choices
        if any(len(normalize(n)) >= 2 and normalize(n) in norm for n in (c.label, *c.synonyms))
    ]
    return mentioned[0] if len({c.value for c in mentioned}) == 1 else None


def answers_step(flow: Flow, state: DialogState, text: str) -> bool:
    """Whether text answers the question in hand as a skip, a done or a choice (不用了 at the
    photos, 结束 after them, 不用了 to binding the phone, 不用了 to leaving for another flow)."""
    part = state.part
    if part == SWITCH:
        return is_word(text, "no")
    if part in (CONFIRM, EDIT):
        return part == CONFIRM and _confirms(flow, text)
    step = flow.step(part)
    # A skip word at a question that must be answered is re-asked with flow.hint.required.
    return bool(
        (step.collect and is_word(text, "done"))
        or is_word(text, "skip")
        or (step.choices and match_choice(step, text) is not None)
    )


def refuses_skip(flow: Flow, state: DialogState, text: str) -> bool:
    """Whether text is only a skip word (不用了) that the question in hand does not take: it must
    be answered (flow.hint.required), so the words cannot be its answer."""
    if state.part in (SWITCH, CONFIRM, EDIT):
        return False
    step = flow.step(state.part)
    return (not step.optional and not step.collect and is_word(text, "skip")
            and not (step.choices and match_choice(step, text) is not None))


def read_answer(ctx: Context, step: Step, text: str) -> Any:
    """The slot value of an answer, or Invalid with the hint to give."""
    if step.choices:
        choice = match_choice(step, text)
        if choice is None:
            raise Invalid(step.hint or "flow.hint.choice")
        return choice.value
    answer = Answer(text=text, inbound=ctx.inbound, now=local(ctx.now, ctx.svc.tz))
    if step.parse is None:
        if not text.strip():
            raise Invalid(step.hint or "flow.hint.default")
        return text.strip()
    try:
        return step.parse(answer)
    except Invalid as exc:
        if step.hint:
            raise Invalid(step.hint) from exc
        raise


async def answer(ctx: Context, flow: Flow, state: DialogState, classify: Classify | None = None) -> Outcome:
    """Continue a flow with the message in hand (not a command; see bot.flows.commands)."""
    state = touched(state, ctx.now)
    part = state.part
    if part == SWITCH:
        return await _switch_answer(ctx, flow, state, classify)
    held = _held_or_recalled(ctx, flow, state)
    if held is not None:
        return held
    if part in (CONFIRM, EDIT) and ctx.inbound.msg_type in ("image", "location", "video", "shortvideo"):
        return _media_at_summary(ctx, flow, state)
    if part == SUBMIT:  # left to submit by a message that was not finished through submitted()
        return Outcome(await flow.finish(ctx, dict(state.slots)), None)
    if part == CONFIRM:
        return await _confirm_answer(ctx, flow, state, classify)
    if part == EDIT:
        return await _edit_pick(ctx, flow, state, classify)
    step = flow.step(part)
    msg_type = ctx.inbound.msg_type
    if msg_type in ("image", "location", "video", "shortvideo"):
        return _media(ctx, flow, state, step)
    # Parsers read simplified characters ('3號樓', '下週三上午十點'); the log keeps what was typed.
    text = simplified(ctx.inbound.text.strip())
    inside = _phone_inside(ctx, flow, state, step, text)
    if inside is not None:  # 5号楼3单元502 电话138…: the number kept for its question, the rest read
        state, text = inside
        if not text:  # 有事打我电话138…: nothing but the number's lead-in, so the question asked again
            return Outcome(join_lines(ctx.text("flow.phone_kept"), prompt(ctx, flow, step, state.slots)), state)
        outcome = await _answer_text(ctx, flow, state, step, text, classify)
        return replace(outcome, reply=join_lines(ctx.text("flow.phone_kept"), outcome.reply))
    return await _answer_text(ctx, flow, state, step, text, classify)


async def _answer_text(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify | None
) -> Outcome:
    """The words of a message (simplified) read at the step in hand."""
    added = _place_added(ctx, flow, state, step, text) or _address_for_description(ctx, flow, state, step, text)
    if added is not None:
        return added
    corrected = await _corrected(ctx, flow, state, step, text)
    if corrected is not None:
        return corrected
    if step.collect:
        return await _collect_text(ctx, flow, state, step, text, classify)
    changed = await _changed(ctx, flow, state, step, text)
    if changed is not None:
        return changed
    early = _phone_early(ctx, flow, state, step, text) or _place_early(ctx, flow, state, step, text)
    if early is not None:
        return early
    if step.optional and is_word(text, "skip") and not (step.choices and match_choice(step, text)):
        return _store(ctx, flow, state, step, None)
    if step.parse is place and _thanks_only(text):  # 谢谢 where the place is asked: no wrong place
        return Outcome(join_lines(ctx.text("flow.thanks_at_question"), prompt(ctx, flow, step, state.slots)), state)
    try:
        picked = _choice_in_sentence(flow, step, text, classify)
        value = picked.value if picked is not None else read_answer(ctx, step, text)
        if picked is None and not step.choices and isinstance(value, str):
            value = as_typed(ctx.inbound.text, value)  # what happened, a name, a note: as written
    except Invalid as exc:
        instead = await _not_the_answer(ctx, flow, state, step, text, classify)
        if instead is not None:
            return instead
        if is_word(text, "skip"):
            return _invalid(ctx, flow, state, step, "flow.hint.required")
        return _invalid(ctx, flow, state, step, exc.hint, **exc.values)
    if not step.choices:  # free answers: make sure it is not another request
        switched = await _elsewhere(ctx, flow, state, text, classify)
        if switched is not None:
            return switched
        if classify is not None and _asks_status(text, classify(text)):
            # 我的工单 where what happened is asked: no description (answered as a status question)
            return _invalid(ctx, flow, state, step, step.hint or "flow.hint.default")
        if step.parse is not description:  # 路灯修了没有 at 有没有需要注意的: no note, its report's status
            asked = await _status_asked(ctx, flow, state, step, text, classify)
            if asked is not None:
                return asked
    early = _description_early(ctx, flow, state, step, text, value, classify)
    if early is not None:
        return early
    if step.parse is place and asks(text) and isinstance(value, dict) and not (
        value.get("building") or "latitude" in value
    ):
        # 你们周末上班吗, 小区大门晚上几点锁啊 where the place is asked: no place (a question dialog
        # answers from the FAQ, or says a person can), whatever place words it holds
        return _invalid(ctx, flow, state, step, "flow.hint.place")
    if step.check is not None:
        refused = await _checked(ctx, flow, state, step, value)
        if refused is not None:
            return refused
    lead = ""
    if step.choices and classify is not None and _says_more_than_a_choice(step, text):
        state, lead = _told_more(ctx, flow, state, step, text, classify)
    if step.parse is phone and len(given := phones(text)) > 1:  # 138… 或者 139…: which one is kept, said
        lead = ctx.text("flow.phone_first", kept=mask_phone(value), other="、".join(
            mask_phone(n) for n in given if n != value))
    return _store(ctx, flow, state, step, value, lead=lead)


def _asks_status(text: str, found: Intent) -> bool:
    """Whether a free answer is a question about the resident's tickets instead: short (我的工单,
    进度), or read surely so and naming no problem (我想看看我的工单; 我报修的路灯还没修好 stays
    what happened)."""
    if found.intent != "ticket_status":
        return False
    sure = found.confidence >= float(flow_config()["switch"]["min_confidence"]) and not found.slots.get("category")
    return len(normalize(text)) <= 6 or sure


def _says_more_than_a_choice(step: Step, text: str) -> bool:
    """Whether a choice was picked out of a sentence that says more (小区南门的路灯不亮了 answering
    which kind of problem: 照明, but also where and what happened)."""
    norm = normalize(text)
    if norm.isdigit() or not says_what(text):
        return False
    return norm not in {normalize(n) for c in step.choices for n in (c.label, c.value, *c.synonyms)}


def _choice_in_sentence(flow: Flow, step: Step, text: str, classify: Classify | None) -> Choice | None:
    """The choice a whole sentence picks where match_choice cannot tell, read as the opening
    message would be (南门停车场的路灯坏了 names 停车 and 照明, the classifier reads 照明 with
    停车场 as the place; 地下车库的灯坏了 names no choice in two characters): only for a sentence
    that says more than a choice and that the classifier reads as this flow's kind of request,
    so 好几天了 still picks no 是."""
    if not step.choices or classify is None or match_choice(step, text) is not None:
        return None
    if not _says_more_than_a_choice(step, text):
        return None
    found = classify(text)
    if found.intent not in (*flow.intents, *flow.related):
        return None
    told = flow.opening(dict(found.slots), text).get(step.slot)
    return next((c for c in step.choices if c.value == told), None)


def _told_more(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify
) -> tuple[DialogState, str]:
    """What the sentence also tells, read as an opening message would be, for the questions not
    answered yet (they are then not asked); with the flow's preface when it names an emergency.
    Only when more is said than the choice's own words (对门那家 is the neighbour, not the matter)."""
    picked = match_choice(step, text)
    rest = normalize(text)
    if picked is not None:
        for name in sorted((normalize(n) for n in (picked.label, *picked.synonyms)), key=len, reverse=True):
            rest = rest.replace(name, "")
    # 路灯坏了 at 哪一类问题: the choice's word (路灯) leaves 坏了, too short to say what a matter is,
    # yet this flow's kind of request, so the sentence is what happened (not asked again later).
    if not says_what(rest) and not (rest.strip() and classify(rest).intent in flow.intents):
        return state, ""
    told = flow.opening(dict(classify(text).slots), text)
    extra = {k: v for k, v in told.items() if k != step.slot and state.slots.get(k) in (None, "", [])}
    if not extra:
        return _detail_with_choice(ctx, flow, state, step, text, told)
    preface = flow.preface(ctx, extra) if "emergency" in extra else None
    return replace(state, slots={**state.slots, **extra}), preface or ""


REFUSED = "_refused"  # slots key: the answer a step's check refused last, {"slot", "value"}


async def _refusal(ctx: Context, state: DialogState, step: Step, value: Any) -> tuple[str, DialogState] | None:
    """The step's own check of an answer it could read: None to take it, else why not and the
    state that remembers the refusal (the same answer given again right after is taken)."""
    refused = {"slot": step.slot, "value": value}
    if step.check is None or state.slots.get(REFUSED) == refused:
        return None  # the resident insists (a full booking slot is then waitlisted)
    why = await step.check(ctx, state.slots, value)
    if why is None:
        return None
    return why, replace(state, slots={**state.slots, REFUSED: refused})


async def _checked(ctx: Context, flow: Flow, state: DialogState, step: Step, value: Any) -> Outcome | None:
    """The step's own check of an answer it could read; None to take it. A refusal is shown with
    the question again, and remembered (_refusal)."""
    refused = await _refusal(ctx, state, step, value)
    if refused is None:
        return None
    why, remembered = refused
    return Outcome(join_lines(why, prompt(ctx, flow, step, state.slots)), remembered)


def _store(ctx: Context, flow: Flow, state: DialogState, step: Step, value: Any, *, lead: str = "") -> Outcome:
    slots = {**{k: v for k, v in state.slots.items() if k != REFUSED}, step.slot: value}
    history = tuple(s for s in state.history if s != step.slot) + (step.slot,)
    return advance(ctx, flow, replace(state, slots=slots, history=history, editing=False), lead=lead)


def _invalid(ctx: Context, flow: Flow, state: DialogState, step: Step, hint: str, **values: Any) -> Outcome:
    count = state.invalid + 1
    parts = [ctx.text(hint, **values), prompt(ctx, flow, step, state.slots)]
    if count >= MAX_INVALID:
        parts.append(ctx.text("flow.offer_handoff"))
    return Outcome("\n".join(parts), replace(state, invalid=count))


def _media(ctx: Context, flow: Flow, state: DialogState, step: Step) -> Outcome:
    """A photo or a location feeds the step in hand, or the flow's step that takes it."""
    msg_type = "image" if ctx.inbound.msg_type in ("image", "video", "shortvideo") else "location"
    target = step if msg_type in step.accepts else flow.media_step(msg_type)
    if target is None:
        return Outcome(join_lines(ctx.text("flow.media_unused"), prompt(ctx, flow, step, state.slots)), state)
    if target.collect:
        kept = list(state.slots.get(target.slot) or []) + [dict(ctx.inbound.media, type=ctx.inbound.msg_type)]
        slots = {**state.slots, target.slot: kept}
        if target is step:
            return Outcome(ctx.text("flow.photo_received", count=len(kept)), replace(state, slots=slots))
        return Outcome(
            join_lines(ctx.text("flow.media_kept"), prompt(ctx, flow, step, slots)), replace(state, slots=slots)
        )
    try:
        value = read_answer(ctx, target, ctx.inbound.text)
    except Invalid as exc:
        if target is not step and state.slots.get(target.slot):
            # a location with no label and no point sent at a later question: the place answered
            # stays, and the question in hand is asked again (not 请告诉我具体位置 before a photo's)
            said = ctx.text("flow.location_empty", field=ctx.text(target.label),
                            value=_clip(target.display(state.slots[target.slot])))
            return Outcome(join_lines(said, prompt(ctx, flow, step, state.slots)), state)
        return _invalid(ctx, flow, state, step, exc.hint, **exc.values)
    if target is step:
        return _store(ctx, flow, state, step, value)
    held = state.slots.get(target.slot)
    if msg_type == "location" and isinstance(held, dict) and held and isinstance(value, dict):
        return _location_later(ctx, flow, state, step, target, held, value)
    slots = {**state.slots, target.slot: value}
    return Outcome(join_lines(ctx.text("flow.media_kept"), prompt(ctx, flow, step, slots)), replace(state, slots=slots))


def _media_at_summary(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """A photo (or a location) sent at the summary, or where which field to change is asked: it
    was "reply 1 or 2" and the photo was lost. It is added to the flow's photos (a location to
    its place: attached to a typed place, else the place), and the summary shown again."""
    msg_type = "image" if ctx.inbound.msg_type in ("image", "video", "shortvideo") else "location"
    target = flow.media_step(msg_type)
    summary_state = replace(state, step=flow.state(CONFIRM), invalid=0)
    if target is None or (target.ask_if is not None and not target.ask_if(state.slots)):
        return Outcome(join_lines(ctx.text("flow.media_unused"), confirm_text(ctx, flow, state.slots)), summary_state)
    if target.collect:
        kept = list(state.slots.get(target.slot) or []) + [dict(ctx.inbound.media, type=ctx.inbound.msg_type)]
        slots = {**state.slots, target.slot: kept}
        said = ctx.text("flow.photo_added_summary", count=len(kept))
        return Outcome(join_lines(said, confirm_text(ctx, flow, slots)), replace(summary_state, slots=slots))
    try:
        value = read_answer(ctx, target, ctx.inbound.text)
    except Invalid:
        return Outcome(join_lines(ctx.text("flow.media_unused"), confirm_text(ctx, flow, state.slots)), summary_state)
    held = state.slots.get(target.slot)
    if isinstance(held, dict) and typed_place(held) and isinstance(value, dict) and "latitude" in value:
        value = {**held, "latitude": value["latitude"], "longitude": value["longitude"]}
        said = ctx.text("flow.location_attached", field=ctx.text(target.label), value=_clip(target.display(value)))
    else:
        said = ctx.text("flow.changed", field=ctx.text(target.label), value=_clip(target.display(value)))
    slots = {**state.slots, target.slot: value}
    return Outcome(join_lines(said, confirm_text(ctx, flow, slots)), replace(summary_state, slots=slots))


def _location_later(
    ctx: Context, flow: Flow, state: DialogState, step: Step, target: Step,
    held: dict[str, Any], point: dict[str, Any],
) -> Outcome:
    """A location sent at a later question, after the place was answered. A typed place with a
    building (3号楼2单元) or a landmark (小区南门, 地下车库) stays, the point attached to it, and the
    resident is told: the label of a map pin (望湖路88号) must not silently replace the building
    the ticket is routed by, nor the landmark the worker looks for. An earlier pin, or words with
    nothing of a place in them, give way to the location, said as a change."""
    if typed_place(held):
        kept = {**held, "latitude": point["latitude"], "longitude": point["longitude"]}
        said = ctx.text("flow.location_attached", field=ctx.text(target.label), value=_clip(target.display(kept)))
    else:
        kept = point
        said = ctx.text("flow.changed", field=ctx.text(target.label), value=_clip(target.display(kept)))
    slots = {**state.slots, target.slot: kept}
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), replace(state, slots=slots, invalid=0))


async def _collect_text(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify | None
) -> Outcome:
    if is_word(text, "done") or (step.optional and (is_word(text, "skip") or is_word(text, "no"))):
        # 否 / 不要 to "send a photo if you can" is none, as 没有 is.
        return _store(ctx, flow, state, step, state.slots.get(step.slot) or None)
    if step.optional and len(text) <= 15 and _CANNOT_SEND.search(text):
        # 我不会发照片, 手机拍不了照: no photo, said to be fine, not "send photos" again
        return _store(ctx, flow, state, step, state.slots.get(step.slot) or None, lead=ctx.text("flow.no_photo_fine"))
    if step.optional and _will_send(text):
        kept = state.slots.get(step.slot)
        if kept:  # 好的 after a photo came: the photos are done
            return _store(ctx, flow, state, step, kept)
        return Outcome(ctx.text("flow.photo_go_ahead"), state)  # 好的，我去拍: how to send it, now
    ahead = _phone_ahead(ctx, flow, state, step, text)
    if ahead is not None:
        return ahead
    instead = await _not_the_answer(ctx, flow, state, step, text, classify)
    if instead is not None:
        return instead
    return _invalid(ctx, flow, state, step, step.hint or "flow.hint.collect")


def _will_send(text: str) -> bool:
    """Whether a reply where photos are asked says the resident will send one: a yes or a nod
    (好的, 嗯, 行: [answers] yes and ack), alone or before words of [answers] will_send (好的，我去拍,
    行 等一下), or those words alone."""
    if is_word(text, "yes") or is_word(text, "ack"):
        return True
    nods = sorted({normalize(w) for w in (*words("answers", "yes"), *words("answers", "ack")) if not w.isascii()},
                  key=len, reverse=True)
    rest = without_filler(normalize(text))
    while (nod := next((n for n in nods if rest.startswith(n)), None)) is not None and len(rest) > len(nod):
        rest = rest[len(nod):]
    return len(rest) <= 14 and any(normalize(w) in rest for w in words("answers", "will_send"))


_CANNOT_SEND = re.compile(
    r"(?:不会|没法|不能|不知道怎么|弄不来|搞不来|不懂怎么)(?:拍|发|弄|传|照)|(?:拍|发|传|弄|照)不了|不会弄|弄不了|不会用"
)


def _phone_ahead(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """A phone number sent where photos are asked, when the phone is the next question: the
    photos are done (with what came) and the number is taken, instead of asking for photos again."""
    kept = state.slots.get(step.slot) or None
    slots = {**state.slots, step.slot: kept}
    following = next_step(flow, ctx, dict(slots), (*state.history, step.slot))
    if following is None or following.parse is not phone:
        return None
    try:
        value = read_answer(ctx, following, text)
    except Invalid:
        return None
    done = replace(state, slots=slots, history=(*state.history, step.slot))
    return _store(ctx, flow, done, following, value)


def _phone_early(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """A message that is only a phone number (typed, or said digit by digit: 幺三八 一二三四 五六七八;
    after at most 电话 / 我的手机是), where something else is asked (the category, the description,
    a name, the notes before they keep it) and the flow's phone question is still to come: the
    number is kept for it and the question in hand asked again, instead of taking the number as
    the answer."""
    if step.parse is phone:
        return None
    if step.choices and match_choice(step, text) is not None:
        return None  # 2 answers a choice; a phone number picks none
    target = next((s for s in flow.steps if s.parse is phone), None)
    if target is None or state.slots.get(target.slot):
        return None
    value = only_phone(Answer(text=text, inbound=ctx.inbound, now=local(ctx.now, ctx.svc.tz)))
    if value is None:
        return None
    slots = {**state.slots, target.slot: value}
    kept = replace(state, slots=slots, history=(*state.history, target.slot))
    return Outcome(join_lines(ctx.text("flow.phone_kept"), prompt(ctx, flow, step, slots)), kept)


_PHONE_IN_WORDS = re.compile(
    r"[，,、；;。\s]*(?:我的?|俺的?)?(?:联系)?(?:电话|手机|手机号|座机|号码|联系方式)?(?:号码|号)?(?:是|为)?[:：]?\s*"
    r"(?P<number>(?<!\d)1[3-9]\d(?:[\s\-]?\d){8})(?![\d\-])[，,、；;。\s]*"
)
# The words that only lead to a number (有事打我电话138…, 138… 有事找我): no answer of their own.
_CALL_WORDS = (
    r"(?:(?:有事|有什么事|有啥事|有事情|有情况|有问题|有需要)(?:的话)?)?(?:就|请|可以|麻烦|直接|随时|您|你们?)*"
    r"(?:给我|给俺)?(?:打|拨|打给|联系|找)?(?:我|俺)?(?:的)?(?:这个)?"
)
_CALL_BEFORE = re.compile(rf"(?:^|(?<=[，,、；;。\s])){_CALL_WORDS}[，,、；;。\s]*$")
_CALL_AFTER = re.compile(rf"^{_CALL_WORDS}(?:电话|号码|手机)?(?:就行|就可以|即可)?(?:了|吧)?(?=[，,、；;。\s]|$)")


def _phone_inside(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str
) -> tuple[DialogState, str] | None:
    """A mobile number said with another answer (5号楼3单元502 电话13800001111, 楼道灯坏了 我手机
    138…) where something else is asked and the flow's phone question has no answer yet: the
    state with the number kept for it, and the rest of the message to read as the answer in hand.
    None when the message is the number alone (_phone_early) or nothing else is said. The words that
    only lead to the number (有事打我电话, 138… 有事找我) are no part of the rest: with nothing more
    said, the rest is empty."""
    if step.parse is phone:
        return None
    target = next((s for s in flow.steps if s.parse is phone), None)
    if target is None or state.slots.get(target.slot):
        return None
    found = _PHONE_IN_WORDS.search(text)
    if found is None:
        return None
    lead, before, after = text[found.start(): found.start("number")], text[: found.start()], text[found.end():]
    if not re.search(r"电话|手机|号码|联系方式|座机", lead) and before.strip() and after.strip():
        return None  # 我打了138…没人接: a number told about, not one to call back
    said = (before + " " + after).strip(_SEPARATORS + " ")
    if len(normalize(said)) < 2:
        return None
    rest = _without_call_words(before, after)
    number = re.sub(r"\D", "", found.group("number"))
    slots = {**state.slots, target.slot: number}
    return replace(state, slots=slots, history=(*state.history, target.slot)), rest


def _without_call_words(before: str, after: str) -> str:
    """What was said around a number, without the words that only lead to it (有事打, 有事找我)."""
    lead_in = _CALL_BEFORE.search(before)
    if lead_in is not None:
        before = before[: lead_in.start()]
    after = after.lstrip(_SEPARATORS + " ")
    tail = _CALL_AFTER.match(after)
    if tail is not None:
        after = after[tail.end():]
    return (before + " " + after).strip(_SEPARATORS + " ")


_WAIT = re.compile(
    r"^(?:(?:(?:嗯|那个|好|好的|哦|噢|啊|你|您)[，,\s]*)*(?:先|请)?(?:等一?下|等等|稍等(?:一?下)?|等会儿?|等一会儿?|"
    r"(?:让我|我)?(?:先|再)?想一?想|我?(?:先|去)?拿(?:一?下)?(?:老花镜|眼镜|本子|手机)|"
    r"我?(?:先|去|再)?(?:问问|问一下|问一问)(?:我|家里)?(?:的)?"
    r"(?:儿子|女儿|老伴儿?|孩子|家里人|家人|爱人|老头子?|老太婆|老婆|老公|孙子|孙女|儿媳|女婿|闺女|物业|邻居)?|"
    r"我?(?:先|去|再)?(?:找找|找一下|看看|看一下|查一下|查查|翻一下|翻翻)(?:号码|门牌号?|电话|手机|本子)?)"
    r"(?:再说|再回你|再回复|再告诉你)?[啊哈吧呀哦噢嘛，,。.!！~～\s]*)+$"
)
_CANT_TYPE = re.compile(r"不会打字|打字(?:不方便|太慢|慢|费劲)|打不了字|不会写字|不识字|不认字|字(?:看不清|太小)|不会拼音")
_RECALL = re.compile(
    r"^(?:我们?|咱们?|刚才|刚刚)*(?:说|讲|填|办|弄)到哪(?:儿|里)?(?:了|啦)?|"
    r"^(?:现在|刚才)?(?:到)?(?:哪一步|第几步)了|^(?:你)?(?:刚才|刚刚)?问(?:我)?(?:的)?(?:是)?(?:什么|啥)|"
    r"^(?:刚才|刚刚)(?:你)?问(?:我)?(?:的)?(?:是)?(?:什么|啥)"
)


def _held_or_recalled(ctx: Context, flow: Flow, state: DialogState) -> Outcome | None:
    """等一下 / 我问问我儿子 (nothing said to take as an answer: told we wait, the question kept),
    and 我刚才说到哪了 (what is noted so far and the question in hand), at any question or at the
    summary; None for any other message."""
    if ctx.inbound.msg_type not in ("text", "voice"):
        return None
    said = simplified(ctx.inbound.text.strip())
    if not said or len(said) > 20:
        return None
    lead = _asked_about(ctx, flow, state, said)  # 要钱吗 / 你们会上门吗 / 催一下: answered, then asked again
    if lead is None and _CANT_TYPE.search(said) and not _PHONE_IN_WORDS.search(said):
        lead = ctx.text("flow.cant_type")
    if lead is None and _WAIT.match(said):
        lead = ctx.text("flow.wait")
    if lead is None and another_thing(said):  # 还有一个事: after this one
        lead = ctx.text("flow.another_thing")
    if lead is not None:
        if state.part == EDIT:  # which field to change is asked again, not the summary
            return Outcome(join_lines(lead, _edit_menu(ctx, flow, state.slots)), state)
        return _resume(ctx, flow, state, lead)
    if recalls(said):
        return recall(ctx, flow, state)
    return None


def asks_place(flow: Flow, state: DialogState) -> bool:
    """Whether the question in hand is the flow's place (a bare 502 there is a room, not a ticket)."""
    if state.part in (CONFIRM, EDIT, SWITCH):
        return False
    return flow.step(state.part).parse is place


_ANOTHER_THING = re.compile(
    r"^(?:对了|哦|噢|嗯)?(?:我)?(?:还有|另外还有|另外|再)(?:一|1)?(?:个|件)?(?:事|事情|问题)"
    r"(?:要说|想说|要问|想问|要反映|想反映)?(?:啊|呀|哈)?$"
)


def another_thing(text: str) -> bool:
    """Whether a message only says there is something else to tell (还有一个事, 对了 我还有个事要说)."""
    return _ANOTHER_THING.match(normalize(text)) is not None


def recalls(text: str) -> bool:
    """Whether a message asks where the request had got to (我刚才说到哪了, 刚才问的什么)."""
    said = simplified(text.strip())
    return bool(said) and len(said) <= 20 and _RECALL.match(normalize(said)) is not None


def recall(ctx: Context, flow: Flow, state: DialogState, lead: str = "") -> Outcome:
    """What is noted so far and the question in hand (at the summary: the summary)."""
    if state.part in (CONFIRM, EDIT):
        said = join_lines(lead, "" if _only_yes_no(flow, state) else ctx.text("flow.recall_summary"))
        return _resume(ctx, flow, replace(state, step=flow.state(CONFIRM)), said)
    noted = _noted_so_far(ctx, flow, state.slots)
    title = ctx.text(flow.title)
    said = ctx.text("flow.recall", title=title, noted=noted) if noted else ctx.text("flow.recall_nothing", title=title)
    return _resume(ctx, flow, state, join_lines(lead, said))


def _asked_about(ctx: Context, flow: Flow, state: DialogState, said: str) -> str | None:
    """The answer to a short question about how the request goes (config/flows.toml [asked]:
    要钱吗, 你们会上门吗, 多久能修好, 为什么要电话, 你们电话多少; [asked_alone]: 催一下, 快点 said
    alone): Flow.asked's, else messages.toml's for this flow, else for every flow (flow.asked.any)."""
    norm = normalize(said)
    if len(norm) > 14:
        return None
    config = flow_config()
    bare = _TRAILING_PARTICLES.sub("", norm)
    topics = [t for t, phrases in config.get("asked", {}).items() if any(normalize(p) in norm for p in phrases)]
    topics += [t for t, phrases in config.get("asked_alone", {}).items() if bare in {normalize(p) for p in phrases}]
    for topic in topics:
        own = flow.asked(ctx, topic, state.slots, said)
        if own is not None:
            return own
        for key in (f"flow.asked.{flow.name}.{topic}", f"flow.asked.any.{topic}"):
            if ctx.svc.texts.has(key):
                values = _ASKED_VALUES[topic](ctx, flow, state, said) if topic in _ASKED_VALUES else {}
                if values is not None:
                    return ctx.text(key, **values)
    return None


_TRAILING_PARTICLES = re.compile(r"[啊吧呀哈嘛呢哦了啦]+$")


def _still_needed(ctx: Context, flow: Flow, state: DialogState, _said: str) -> dict[str, Any]:
    """What a request not yet submitted still needs: the questions left that must be answered
    (optional ones not named), or at the summary its confirmation."""
    slots = dict(state.slots)
    missing = []
    for step in flow.steps:
        if step.slot in slots or step.optional or (step.ask_if is not None and not step.ask_if(slots)):
            continue
        if step.prefill is not None and step.prefill(slots, ctx.profile) not in (None, "", []):
            continue
        missing.append(ctx.text(step.label))
    if state.part in (CONFIRM, EDIT) or not missing:
        return {"title": ctx.text(flow.title), "missing": ctx.text("flow.urge_confirm")}
    return {"title": ctx.text(flow.title), "missing": ctx.text("flow.urge_missing", questions="、".join(missing))}


def _centre_answer(_ctx: Context, _flow: Flow, _state: DialogState, said: str) -> dict[str, Any] | None:
    """The service centre's own answer (config/faq.toml: its phone, where it is), if it has one."""
    known = faq.answer(said)
    return {"answer": known} if known is not None else None


# Topics whose answer names something of the request or of the operators' config.
_ASKED_VALUES: dict[str, Callable[[Context, Flow, DialogState, str], dict[str, Any] | None]] = {
    "urge": _still_needed, "centre": _centre_answer,
}


def _noted_so_far(ctx: Context, flow: Flow, slots: dict[str, Any]) -> str:
    """One line per question answered so far (what a summary would say of them)."""
    lines = []
    for step in shown_steps(flow, slots):
        value = slots.get(step.slot)
        if value not in (None, "", []):
            lines.append(f"{ctx.text(step.label)}：{_clip(step.display(value))}")
    return "\n".join(lines)


def _place_early(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """A building address alone (5号楼3单元502) where a choice is asked (which kind of problem) and
    the flow's place question is still to come: the place is kept for it, said, and the choice
    asked again, instead of "reply with a number"."""
    if not step.choices or match_choice(step, text) is not None:
        return None
    target = next((s for s in flow.steps if s.parse is place), None)
    if target is None or target is step or state.slots.get(target.slot) not in (None, "", []):
        return None
    address = only_address(text)
    if address is None:
        return None
    slots = {**state.slots, target.slot: address}
    kept = replace(state, slots=slots, history=(*state.history, target.slot), invalid=0)
    said = ctx.text("flow.noted", field=ctx.text(target.label), value=_clip(target.display(address)))
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), kept)


def _description_early(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, value: Any, classify: Classify | None
) -> Outcome | None:
    """What happened (灯不亮三天了), told where the place is asked before it was asked (the menu's
    way in: category, then place): it was "not a place". Words with nothing of a place in them that
    the classifier reads as this flow's request are kept as what happened, and the place asked
    again; the description is then not asked."""
    target = _description_of(flow, step)
    if step.parse is not place or target is None or state.slots.get(target.slot) not in (None, "", []):
        return None
    if typed_place(value) or (isinstance(value, dict) and "latitude" in value) or classify is None:
        return None
    if is_question(text) or not says_what(text) or classify(text).intent not in flow.intents:
        return None
    try:
        kept = read_answer(ctx, target, text)
    except Invalid:
        return None
    slots = {**state.slots, target.slot: kept}
    said = ctx.text("flow.noted", field=ctx.text(target.label), value=_clip(str(kept)))
    new = replace(state, slots=slots, history=(*state.history, target.slot), invalid=0)
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), new)


def _place_added(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """'2单元502' sent at another question after the place was given as a building alone (3号楼):
    the unit and room are added to the place, and the question in hand is asked again."""
    target = next((s for s in flow.steps if s.parse is place), None)
    if target is None or target is step:
        return None
    more = place_more(state.slots.get(target.slot), text)
    if more is None:
        return None
    slots = {**state.slots, target.slot: more}
    said = ctx.text("flow.place_added", field=ctx.text(target.label), value=target.display(more))
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), replace(state, slots=slots, invalid=0))


DETAIL_MAX = 1000  # characters of a description grown by additions
_COURTESY = frozenset({"@greet", "@thanks", "@closing"})
_FILLERS = frozenset({*"了的啊呀吧呢哈啦嘛哦噢嗯太很真", "非常", "十分", "特别", "实在", "真是"})


def courtesy(text: str) -> bool:
    """Whether a message is only courtesy, each word of it a greeting, thanks or a closing in the
    classifier's lexicon (谢谢啊, 辛苦了 谢谢, 嗯 好的好的, 你好): never a detail of the matter.
    晚上很黑 谢谢 says more."""
    classifier = get_classifier()
    said = [w for w in classifier.segments(text) if w.strip() and w not in _FILLERS]
    return bool(said) and all(classifier.terms(w) & _COURTESY for w in said)


def _thanks_only(text: str) -> bool:
    """Whether a message is only thanks (谢谢, 谢谢啊, 辛苦了 谢谢), not a greeting or a closing."""
    return courtesy(text) and bool(get_classifier().terms(text) & {"@thanks"}) and not (
        get_classifier().terms(text) & {"@greet", "@closing"})


def _description_of(flow: Flow, step: Step) -> Step | None:
    """The flow's what-happened question, when it is not the one in hand."""
    target = next((s for s in flow.steps if s.parse is description), None)
    return None if target is None or target is step else target


_PARTICLES = "了的啊呀吧呢哈"
_SEPARATORS = " \t，,。.！!、；;～~"


def _lead_choice(step: Step, text: str) -> tuple[Choice, str] | None:
    """A choice said first and then more: '否，另外灯罩也掉了' → (否, '另外灯罩也掉了')."""
    said = text.strip()
    for choice in step.choices:
        for name in sorted((choice.label, *choice.synonyms), key=len, reverse=True):
            if name and said.startswith(name):
                rest = said[len(name):].lstrip(_PARTICLES)
                if rest[:1] and rest[0] in _SEPARATORS:
                    return choice, rest.lstrip(_SEPARATORS)
    return None


def _added_to_description(
    ctx: Context, flow: Flow, state: DialogState, step: Step, more: str
) -> tuple[DialogState, str] | None:
    """The state with `more` added to the description given earlier, and what to say; None when
    there is no description yet or `more` adds nothing (a question, filler, what was said)."""
    target = _description_of(flow, step)
    before = str(state.slots.get(target.slot) or "") if target is not None else ""
    more = unfilled(more)  # 嗯 那个 灯罩也掉了, by voice: the words, not the filler
    if target is None or not before or says_nothing(more) or is_question(more) or not says_what(more):
        return None
    if courtesy(more):  # 谢谢啊, 辛苦了 谢谢, 嗯 好的好的: said to us, not about the matter
        return None
    if normalize(more) in normalize(before):
        return None
    more = as_typed(ctx.inbound.text, more)
    slots = {**state.slots, target.slot: f"{before}；{more}"[:DETAIL_MAX]}
    return replace(state, slots=slots), ctx.text("flow.detail_added", field=ctx.text(target.label), value=_clip(more))


def as_typed(typed: str, read: str) -> str:
    """The resident's own characters behind `read`, a piece of simplified(typed): 燈還是不亮 kept as
    typed (matching reads the simplified form; what is stored and shown to the owner is what they
    wrote). `read` as it is when it is no such piece, or the conversion changed the length."""
    heard = simplified(typed)
    start = heard.find(read) if read and len(heard) == len(typed) else -1
    return read if start < 0 else typed[start:start + len(read)]


async def _not_the_answer(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify | None
) -> Outcome | None:
    """What a message that cannot be the answer asked for is instead: another request or a person
    asked for (_elsewhere), else a detail added to the description (_detail_added); None if neither."""
    switched = await _elsewhere(ctx, flow, state, text, classify)
    if switched is not None:
        return switched
    asked = await _status_asked(ctx, flow, state, step, text, classify)
    if asked is not None:
        return asked
    return _detail_added(ctx, flow, state, step, text, classify)


async def _status_asked(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify | None
) -> Outcome | None:
    """我想问一下我那个路灯修了没有 where a booking's time (or any question that cannot read it) is
    asked: a question naming a kind of problem the resident has an open report of is answered with
    that report's status, and the question in hand asked again, as a status question by number
    is (the classifier may read it as a new report: 修了没有 names no status word). None when it
    is no such question."""
    from bot.flows.status import asked_after

    if classify is None or not normalize(text):
        return None
    told = await asked_after(ctx, text, classify(text).slots.get("category"))
    if told is None:
        return None
    return Outcome(join_lines(told, prompt(ctx, flow, step, state.slots)), state)


def _detail_added(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, classify: Classify | None
) -> Outcome | None:
    """A sentence that adds to what happened, sent where a choice or photos are asked after the
    description was given ('对了 灯罩也掉下来了' at 要绑定吗): it is added to the description and
    the question in hand asked again (answered, when the sentence starts with a choice: '否，…'),
    instead of 'reply with a number'. When the sentence, read as an opening, names another
    category or building than this request's, it is another matter: the resident is asked to
    tell it after this one."""
    if not (step.choices or step.collect):
        return None
    lead = _lead_choice(step, text) if step.choices else None
    more = lead[1] if lead is not None else text
    if lead is not None and courtesy(more):  # 否，谢谢: the choice, and thanks
        return _store(ctx, flow, state, step, lead[0].value)
    added = _added_to_description(ctx, flow, state, step, more)
    if added is None:
        return None
    if classify is not None:
        found = classify(more)
        if found.intent not in (*flow.intents, *flow.related) and found.confidence >= float(
            flow_config()["switch"]["min_confidence"]
        ):
            return None  # another kind of request (a status question, a person): served elsewhere
        if found.intent == "ticket_status" and len(normalize(more)) <= 6:
            return None  # 我的工单 / 进度: no detail of the matter, whatever the confidence
        if _another_matter(flow, state, flow.opening(dict(found.slots), more)):
            added = state, ctx.text("flow.another_matter")
    grown, said = added
    if lead is not None:
        return _store(ctx, flow, grown, step, lead[0].value, lead=said)
    return Outcome(join_lines(said, prompt(ctx, flow, step, grown.slots)), replace(grown, invalid=0))


def _detail_with_choice(
    ctx: Context, flow: Flow, state: DialogState, step: Step, text: str, told: dict[str, Any]
) -> tuple[DialogState, str]:
    """说过了，他还骂人 at a choice question after the description was given: the choice is taken
    (by the caller) and what else is said added to the description."""
    lead = _lead_choice(step, text)
    if _another_matter(flow, state, told):
        return state, ""
    added = _added_to_description(ctx, flow, state, step, lead[1] if lead is not None else text)
    return added if added is not None else (state, "")


def _another_matter(flow: Flow, state: DialogState, told: dict[str, Any]) -> bool:
    """Whether what a sentence tells (read as an opening) names another matter than the request
    in hand: another pick where the resident chose (the category), or another building."""
    for step in flow.steps:
        value, held = told.get(step.slot), state.slots.get(step.slot)
        if value in (None, "", []) or held in (None, "", []):
            continue
        if step.parse is place and isinstance(value, dict) and isinstance(held, dict):
            if value.get("building") and held.get("building") and value["building"] != held["building"]:
                return True
        elif step.choices and step.prefill is None and value != held:
            return True
    return False


def _address_for_description(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """6栋2单元302 sent where what happened is asked, after the place question took what happened
    (厨房天花板一直往下滴水 楼上那家不在家, with no building): the two answers were crossed. The
    address becomes the place and the earlier words what happened, and the flow goes on."""
    target = next((s for s in flow.steps if s.parse is place), None)
    if step.parse is not description or target is None:
        return None
    held = state.slots.get(target.slot)
    address = only_address(text)
    if address is None or not isinstance(held, dict) or held.get("building") or "latitude" in held:
        return None
    earlier = str(held.get("text") or "")
    if says_nothing(earlier) or len(normalize(earlier)) < 4:
        return None
    slots = {**state.slots, target.slot: address}
    said = ctx.text("flow.answers_crossed", place=_clip(target.display(address)), what=_clip(earlier))
    moved = replace(state, slots=slots, invalid=0)
    return _store(ctx, flow, moved, step, earlier, lead=said)


_CORRECTION = re.compile(
    r"^(?:哎呀|哎|唉|啊|嗯|呃|噢|哦)*[，,。！!\s]*(?:不对|不是|错了|说错了|搞错了|写错了|弄错了|算了)"
    r"[了啊呀吧，,。！!\s]*(?:还是|应该是)?(?P<rest>.+)$"
)


def _correction(text: str) -> str | None:
    """What follows a correction at the start of a message (不对 是5号楼 → 是5号楼), or None."""
    found = _CORRECTION.match(text.strip())
    return found.group("rest").strip() if found is not None and found.group("rest").strip() else None


_NOT_BUT = re.compile(r"^(?:不对|哎呀|哎)?[，,\s]*(?:是|在)(?P<rest>[^，,\s]+?)[，,\s]*(?:不是|不在)(?P<old>.+?)[了啊呀。.!！\s]*$")


async def _corrected(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """A change of an earlier answer said after a correction word (哎呀不对 还是改成后天吧, 不对
    是5号楼), or as 是5号楼不是3号楼, at any question but the one it changes; None when the
    message is not one."""
    rest = _correction(text)
    if rest is None:
        not_but = _NOT_BUT.match(text.strip())
        if not_but is None or only_address(not_but.group("rest")) is None:
            return None
        return await _place_corrected(ctx, flow, state, step, not_but.group("rest"))
    changed = await _changed(ctx, flow, state, step, rest)
    if changed is None:
        changed = await _place_corrected(ctx, flow, state, step, rest)
    return changed if changed is not None else await _choice_corrected(ctx, flow, state, step, rest)


async def _choice_corrected(ctx: Context, flow: Flow, state: DialogState, step: Step, rest: str) -> Outcome | None:
    """不对 是楼下邻居 while another question is asked: the one earlier choice answered (who the
    dispute is with) that these words pick otherwise is changed. None unless exactly one does."""
    said = re.sub(r"^(?:是|在|跟|和|与)+", "", rest)
    if says_nothing(said):
        return None
    picks = []
    for earlier in flow.steps:
        held = state.slots.get(earlier.slot)
        if earlier is step or not earlier.choices or held in (None, "", []) or earlier.slot not in state.history:
            continue
        choice = match_choice(earlier, said)
        if choice is not None and choice.value != held:
            picks.append((earlier, choice))
    if len(picks) != 1:
        return None
    target, choice = picks[0]
    return await _change_midway(ctx, flow, state, step, target, choice.label)


async def _changed(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """An earlier answer changed while step is asked: the flow's own reading (a booking's time),
    or a field named with its new value (_edit_midway)."""
    moved = await flow.midway(ctx, state.slots, step, text)
    if isinstance(moved, Outcome):  # the flow left for another request (a report at 哪项服务)
        return moved
    if moved is not None:
        slots, said = moved
        if state.slots.get(step.slot) in (None, "", []) and slots.get(step.slot) not in (None, "", []):
            # the question in hand answered too (a booking's notes said with a new time): on to the next
            history = tuple(s for s in state.history if s != step.slot) + (step.slot,)
            return advance(ctx, flow, replace(state, slots=slots, history=history), lead=said)
        return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), replace(state, slots=slots))
    return await _edit_midway(ctx, flow, state, step, text)


async def _place_corrected(ctx: Context, flow: Flow, state: DialogState, step: Step, rest: str) -> Outcome | None:
    """不对 是5号楼 while another question is asked: the place answered earlier is changed, as
    地址改成5号楼 would change it."""
    target = next((s for s in flow.steps if s.parse is place), None)
    address = only_address(re.sub(r"^(?:是|在)", "", rest))
    if target is None or target is step or address is None or state.slots.get(target.slot) in (None, "", []):
        return None
    return await _change_midway(ctx, flow, state, step, target, address["text"])


# Leaving for another intent ---------------------------------------------------------------------


async def _elsewhere(
    ctx: Context, flow: Flow, state: DialogState, text: str, classify: Classify | None
) -> Outcome | None:
    """A message that is not for the question in hand: a request for a person (the classifier's
    handoff: 你是机器人吗, 我要跟人说话), served at once as 人工 is, with what was collected so far;
    or another request (_maybe_switch). None when it may be the answer."""
    if classify is None or not normalize(text):
        return None
    found = classify(text)
    if found.intent == "handoff" and _asks_in_words(text):
        return await _hand_off(ctx, flow, state)
    return _maybe_switch(ctx, flow, state, text, found)


def _asks_for_person(text: str, classify: Classify | None) -> bool:
    """Whether text asks for a person (你是机器人吗, 我要跟人说话): the classifier's hand-off, in
    words that ask for one rather than name one (书记说会处理的 is an answer)."""
    return (classify is not None and bool(normalize(text)) and classify(text).intent == "handoff"
            and _asks_in_words(text))


def _asks_in_words(text: str) -> bool:
    said = normalize(text)
    return any(word in said for word in flow_config().get("handoff", {}).get("midflow_words", ()))


async def _hand_off(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """The resident handed to a person (bot.flows.handoff), the flow in hand carried to the staff."""
    from bot.flows.handoff import hand_off

    return Outcome(await hand_off(ctx, ctx.text("handoff.reason_intent"), flow, state), None)


def _maybe_switch(ctx: Context, flow: Flow, state: DialogState, text: str, found: Intent) -> Outcome | None:
    """Ask whether to leave when the message clearly starts another flow."""
    conf = flow_config()["switch"]
    if len(text) < int(conf["min_length"]):
        return None
    from bot.flows import registry

    if found.confidence < float(conf["min_confidence"]) or found.intent in flow.intents:
        return None
    if found.intent in flow.related and says_what(text):
        return None  # a dispute told inside a complaint (or the reverse) is an answer, not a switch
    other = registry.for_intent(found.intent)
    if other is None or other.name == flow.name:
        return None
    pending = {"flow": other.name, "slots": found.slots, "text": text, "back": state.step}
    question = ctx.text("flow.switch_ask", current=ctx.text(flow.title), other=ctx.text(other.title))
    return Outcome(question, replace(state, step=flow.state(SWITCH), pending=pending))


async def _switch_answer(ctx: Context, flow: Flow, state: DialogState, classify: Classify | None = None) -> Outcome:
    pending = state.pending or {}
    text = ctx.inbound.text
    back = replace(state, step=str(pending.get("back", state.step)), pending=None)
    if is_word(text, "yes") or normalize(text) == "1":
        from bot.flows import registry

        other = registry.get(str(pending.get("flow", "")))
        if other is None:
            return _resume(ctx, flow, back, "")
        lead = ctx.text("flow.switched", current=ctx.text(flow.title))
        return start(ctx, other, dict(pending.get("slots") or {}), str(pending.get("text", "")), lead=lead)
    if is_word(text, "no") or normalize(text) == "2":
        return _resume(ctx, flow, back, ctx.text("flow.stay"))
    asked = flow.step(back.part) if back.part not in (CONFIRM, EDIT) else None
    said = Answer(text=text, inbound=ctx.inbound, now=local(ctx.now, ctx.svc.tz))
    if asked is not None and asked.parse is phone and only_phone(said):
        # 135… where the phone was asked when another request was named: its answer, so it goes on
        return await answer(ctx, flow, back, classify)
    return Outcome(ctx.text("flow.switch_hint"), state)


def _resume(ctx: Context, flow: Flow, state: DialogState, lead: str) -> Outcome:
    """Ask again where the resident was (a step, or the summary)."""
    if state.part == CONFIRM:
        return Outcome(join_lines(lead, confirm_text(ctx, flow, state.slots)), state)
    if state.part in (EDIT, SWITCH):
        return advance(ctx, flow, state, lead=lead)
    return Outcome(join_lines(lead, prompt(ctx, flow, flow.step(state.part), state.slots)), state)


# Summary, confirmation and edits ----------------------------------------------------------------


async def _confirm_answer(ctx: Context, flow: Flow, state: DialogState, classify: Classify | None = None) -> Outcome:
    text = ctx.inbound.text
    own = await flow.at_summary(ctx, dict(state.slots), text)
    if own is not None:
        return own
    edit = _edit_target(flow, text, state.slots)
    if edit is not None:
        step, rest = edit
        return await _edit(ctx, flow, state, step, rest)
    if is_word(text, "yes") or normalize(text) == "1" or _confirms(flow, text) or _submits(text):
        return Outcome(await flow.finish(ctx, dict(state.slots)), None)
    more = _ADDING.match(normalize(text))
    target = _description_of(flow, flow.steps[0]) or flow.steps[0]
    if more is not None and target.parse is description and state.slots.get(target.slot):
        # 情况再补充一下 灯罩也掉了 at the summary: added to what happened, the summary shown again
        grown = f"{state.slots[target.slot]}；{more.group('more')}"[:DETAIL_MAX]
        slots = {**state.slots, target.slot: grown}
        said = ctx.text("flow.detail_added", field=ctx.text(target.label), value=_clip(more.group("more")))
        return Outcome(join_lines(said, confirm_text(ctx, flow, slots)), replace(state, slots=slots, invalid=0))
    if is_word(text, "modify") or is_word(text, "no") or normalize(text) == "2":
        if _only_yes_no(flow, state):
            # Nothing to edit (a confirmation of one thing: 删除我的信息, 撤销工单): 否 keeps things as they are.
            return Outcome(ctx.text(flow.declined or "flow.cancelled"), None)
        return Outcome(_edit_menu(ctx, flow, state.slots), replace(state, step=flow.state(EDIT), invalid=0))
    if _asks_for_person(text, classify):
        return await _hand_off(ctx, flow, state)
    count = state.invalid + 1
    hint = "flow.hint.yes_no" if _only_yes_no(flow, state) else "flow.hint.confirm"  # 撤销吗: no 提交 / 修改
    reply = join_lines(ctx.text(hint), confirm_text(ctx, flow, state.slots))
    if count >= MAX_INVALID:
        reply = join_lines(reply, ctx.text("flow.offer_handoff"))
    return Outcome(reply, replace(state, invalid=count))


_THANKS = re.compile(r"^(?:谢谢|谢谢你|谢谢您|多谢|麻烦了|麻烦你了|辛苦了|辛苦你了)+|(?:谢谢|谢谢你|谢谢您|多谢|麻烦了|麻烦你了|辛苦了|辛苦你了)+$")
_ADDING = re.compile(r"^(?:情况|描述)?(?:我)?(?:再|还要|还想|要)?补充(?:一下|一点|几句|个)?(?:情况)?(?P<more>.{2,})$")


def _submits(text: str) -> bool:
    """Whether text at a summary says to send it, with thanks around a yes (好的谢谢, 可以了 麻烦了)
    or in a submit word (发吧, 就这样)."""
    bare = _THANKS.sub("", normalize(text))
    if bare.endswith(("提交吧", "提交")) and is_word(bare.removesuffix("吧").removesuffix("提交"), "yes"):
        return True  # 嗯 对的 提交吧
    return bool(bare) and (is_word(bare, "yes") or is_word(bare, "submit") or _yes_words_only(bare))


def _yes_words_only(said: str) -> bool:
    """Whether said (normalized) is several yes or submit words one after another and nothing
    else: 对的没问题, 好的没问题, 嗯对 (one of them alone is is_word's)."""
    known = {normalize(w) for w in (*words("answers", "yes"), *words("answers", "submit"))} - {""}
    covered = [True] + [False] * len(said)  # covered[i]: said[:i] is such words
    for end in range(1, len(said) + 1):
        covered[end] = any(covered[start] and said[start:end] in known for start in range(max(0, end - 8), end))
    return covered[-1]


def _only_yes_no(flow: Flow, state: DialogState) -> bool:
    """Whether the flow's summary is a yes-or-no question (撤销这个工单吗, 删除我的信息吗), with
    nothing to submit or change."""
    return bool(flow.declined) or not shown_steps(flow, state.slots)


def _confirms(flow: Flow, text: str) -> bool:
    """Whether text is one of the flow's own words for yes at its summary (Flow.confirm_words)."""
    return normalize(text) in {normalize(w) for w in flow.confirm_words}


def _edit_menu(ctx: Context, flow: Flow, slots: dict[str, Any]) -> str:
    steps = shown_steps(flow, slots)
    lines = "\n".join(f"{i}. {ctx.text(s.label)}" for i, s in enumerate(steps, 1))
    return ctx.text("flow.edit_which", fields=lines)


def _edit_target(
    flow: Flow, text: str, slots: dict[str, Any], *, leading: bool = False
) -> tuple[Step, str] | None:
    """The step an edit phrase names ("地址错了，是10栋" → place, "是10栋"), if any, among the steps
    that apply to these answers (改时间: the time of the service chosen); with leading, only a
    phrase the message starts with (a sentence that mentions 不紧急 is not an edit)."""
    norm = normalize(text)
    steps = shown_steps(flow, slots)
    for step in steps:
        for word in step.edit_words:
            w = normalize(word)
            if w and (norm.startswith(w) if leading else w in norm):
                rest = norm.replace(w, "", 1)
                for filler in ("应该是", "改成", "改为", "换成", "是"):
                    if rest.startswith(filler):
                        rest = rest[len(filler):]
                        break
                return step, rest
    for step in steps:  # 地址改成5号楼1单元, 把电话改为139…, 电话是139…: the field named, then the value
        for noun in _edit_nouns(step):
            found = re.match(rf"^把?{re.escape(noun)}(?:改成|改为|改到|换成|应该是|是)(.+)$", norm)
            if found is not None:
                return step, found.group(1)
    named = _named_wrong(flow, norm, slots)
    return (named, "") if named is not None else None


_WRONG = "(?:说|填|写|打|搞|弄|输|记)?(?:错了|错啦|不对|有误|不算)"


def _named_wrong(flow: Flow, norm: str, slots: dict[str, Any]) -> Step | None:
    """The answered field a message says is wrong and nothing more (电话说错了, 刚才地址填错了):
    its question is to be asked again."""
    for step in shown_steps(flow, slots):
        for noun in _edit_nouns(step):
            if re.fullmatch(rf"(?:刚才|前面|我)*(?:的)?把?{re.escape(noun)}(?:号码|号)?{_WRONG}[了啊呀]*", norm):
                return step
    return None


_EDIT_AFFIX = re.compile(r"^(?:改|换)|(?:错了|不对|有误)$")


def _edit_nouns(step: Step) -> set[str]:
    """The field an edit word names, without the verb (改地址 → 地址, 电话不对 → 电话)."""
    return {noun for noun in (_EDIT_AFFIX.sub("", normalize(w)) for w in step.edit_words) if len(noun) >= 2}


async def _edit_midway(ctx: Context, flow: Flow, state: DialogState, step: Step, text: str) -> Outcome | None:
    """An earlier answer changed while another question is in hand ("地址改成5号楼1单元" while
    the phone is asked): the field is changed, checked as its own question checks it, and the
    question in hand asked again; a field still to be asked ("电话是…" before the phone question)
    is kept for it, and then not asked. Only a message that starts with the edit and carries the
    value; anything else is read as the answer in hand."""
    wrong = _named_wrong(flow, normalize(text), state.slots)
    if wrong is not None and wrong is not step and not wrong.collect and state.slots.get(wrong.slot) not in (None, "", []):
        # 电话说错了 while binding it is asked: the phone asked again, then on from there
        return await _edit(ctx, flow, state, wrong, "")
    found = _edit_target(flow, text, state.slots, leading=True)
    return None if found is None else await _change_midway(ctx, flow, state, step, *found)


async def _change_midway(
    ctx: Context, flow: Flow, state: DialogState, step: Step, target: Step, rest: str
) -> Outcome | None:
    """Step target's answer changed to rest while step is asked (see _edit_midway)."""
    if target is step or target.collect or not rest:
        return None
    if target.ask_if is not None and not target.ask_if(state.slots):
        return None
    try:
        value = read_answer(ctx, target, rest)
    except Invalid:
        return None
    refused = await _refusal(ctx, state, target, value)
    if refused is not None:
        why, remembered = refused
        said = ctx.text("flow.not_changed", field=ctx.text(target.label), reason=why)
        return Outcome(join_lines(said, prompt(ctx, flow, step, state.slots)), remembered)
    before = state.slots.get(target.slot)
    slots = {**{k: v for k, v in state.slots.items() if k != REFUSED}, target.slot: value}
    history = tuple(s for s in state.history if s != target.slot) + (target.slot,)
    said = ctx.text("flow.changed" if before not in (None, "", []) else "flow.noted",
                    field=ctx.text(target.label), value=_clip(target.display(value)))
    new = replace(state, slots=slots, history=history, invalid=0)
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), new)


async def _edit_pick(ctx: Context, flow: Flow, state: DialogState, classify: Classify | None = None) -> Outcome:
    """Which answer to change, after 否 at the summary: its number or name, or the change said in
    full (地址改成5号楼). 0 or nothing to change (不改了, 都对) goes back to the summary; 确认 /
    提交 submits as 确认 at the summary does."""
    text = ctx.inbound.text
    steps = shown_steps(flow, state.slots)
    norm = normalize(text)
    chosen: Step | None = None
    if norm.isdigit() and 1 <= int(norm) <= len(steps):
        chosen = steps[int(norm) - 1]
    elif norm == "0" or is_word(text, "unchanged"):
        return Outcome(confirm_text(ctx, flow, state.slots), replace(state, step=flow.state(CONFIRM), invalid=0))
    elif is_word(text, "submit"):
        return Outcome(await flow.finish(ctx, dict(state.slots)), None)
    else:
        target = _edit_target(flow, text, state.slots)
        if target is not None:
            return await _edit(ctx, flow, state, *target)
        chosen = next((s for s in steps if normalize(ctx.text(s.label)) in norm), None)
        chosen = chosen or next((s for s in steps if any(n in norm for n in _edit_nouns(s))), None)
        if chosen is None:  # 5号楼1单元, 139…: the new value itself, for the one field it can be
            typed = _typed_value(ctx, steps, text)
            if typed is not None:
                return await _edit(ctx, flow, state, *typed)
    if chosen is None:
        if _asks_for_person(text, classify):
            return await _hand_off(ctx, flow, state)
        return Outcome(join_lines(ctx.text("flow.hint.choice"), _edit_menu(ctx, flow, state.slots)), state)
    return await _edit(ctx, flow, state, chosen, "")


def _typed_value(ctx: Context, steps: list[Step], text: str) -> tuple[Step, str] | None:
    """The field a new value alone answers where which field to change is asked: a phone number
    (the phone), or a building address (the place)."""
    answer = Answer(text=text, inbound=ctx.inbound, now=local(ctx.now, ctx.svc.tz))
    for step in steps:
        if step.parse is phone and only_phone(answer) is not None:
            return step, text
        if step.parse is place and only_phone(answer) is None and only_address(text) is not None:
            return step, text
    return None


async def _edit(ctx: Context, flow: Flow, state: DialogState, step: Step, rest: str) -> Outcome:
    """Change one field: take the new value from the same message when it has one (checked as its
    question checks it: refused, the question is asked with why), else ask."""
    slots = {k: v for k, v in state.slots.items() if k != step.slot}
    asking = replace(state, step=step.state, slots=slots, editing=True, invalid=0)
    if rest:
        try:
            value = read_answer(ctx, step, rest)
        except Invalid:
            value = None
        if value is not None:
            if step.check is not None:
                refused = await _checked(ctx, flow, asking, step, value)
                if refused is not None:
                    return refused
            return advance(ctx, flow, replace(state, slots={**slots, step.slot: value}, editing=False))
    return Outcome(prompt(ctx, flow, step, state.slots), asking)


# Commands inside a flow -------------------------------------------------------------------------


def back(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """返回: ask again the question answered last before the one in hand, saying what its answer
    was. Only a question the resident answered (history), and one that comes before the one in
    hand: a phone number kept early (_phone_early) is ahead, not back, and a value the opening
    message or the profile filled was never asked. Photos already sent stay (a collecting step
    asked again says how many it holds; 好了 keeps them, new ones are added)."""
    state = touched(state, ctx.now)
    if state.part in (SWITCH, EDIT):
        return _resume(ctx, flow, replace(state, step=flow.state(CONFIRM)) if state.part == EDIT
                       else replace(state, step=str((state.pending or {}).get("back", state.step)),
                                    pending=None), "")
    if state.part == CONFIRM and _SAID_WRONG.search(normalize(ctx.inbound.text)):
        # 说错了 at the summary: which field, as 不对 there asks (not the question answered last)
        return Outcome(_edit_menu(ctx, flow, state.slots), replace(state, step=flow.state(EDIT), invalid=0))
    order = [s.slot for s in flow.steps]
    here = order.index(state.part) if state.part in order else len(order)  # the summary: after all
    earlier = [s for s in state.history if s in order and order.index(s) < here]
    if not earlier:
        return _resume(ctx, flow, state, ctx.text("flow.at_first"))
    last = earlier[-1]
    step = flow.step(last)
    before = state.slots.get(last)
    kept = step.collect and isinstance(before, list) and bool(before)
    dropped = (REFUSED,) if kept else (last, REFUSED)
    slots = {k: v for k, v in state.slots.items() if k not in dropped}
    history = tuple(s for s in state.history if s != last)
    new = replace(state, step=step.state, slots=slots, history=history, invalid=0, editing=False)
    said = "" if before in (None, "", []) else ctx.text("flow.back_was", value=_clip(step.display(before)))
    return Outcome(join_lines(said, prompt(ctx, flow, step, slots)), new)


_SAID_WRONG = re.compile(r"错了|不算")


def restart(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """重新开始: forget every answer and ask from the first question."""
    blank = replace(
        new_state(flow.name, flow.state(flow.steps[0].slot), ctx.now), version=state.version + 1
    )
    return advance(ctx, flow, blank, lead=ctx.text("flow.restarted"), fresh=True)


def help_text(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """帮助: the commands, then the question in hand again."""
    state = touched(state, ctx.now)
    return _resume(ctx, flow, state, ctx.text("flow.help"))


def resume(ctx: Context, flow: Flow, state: DialogState, lead: str) -> Outcome:
    """Say lead, then ask again where the resident was."""
    return _resume(ctx, flow, touched(state, ctx.now), lead)


def join_lines(*parts: str) -> str:
    """The non-empty parts of a reply, one per line."""
    return "\n".join(p for p in parts if p)
