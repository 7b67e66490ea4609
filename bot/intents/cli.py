"""`communitybot classify`: classify texts, a JSONL stream, or evaluate a labelled set.

    communitybot classify TEXT...            one JSON result per line
    communitybot classify --jsonl FILE|-     lines {"text": ...} in, one result line each, same order
    communitybot classify --eval FILE        accuracy and per-intent precision/recall/F1 and count
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tomllib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bot.config_files import NotUtf8, read_lines
from bot.intents.classifier import DEFAULT_CONFIG_DIR, Classifier, get_classifier
from bot.intents.rules import INTENTS, INTENTS_FILE


def add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of `classify` on a (sub)parser."""
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="messages to classify")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--jsonl", metavar="FILE", help='lines {"text": ...} ("-" for stdin)')
    mode.add_argument("--eval", metavar="FILE", help='labelled lines {"text", "intent", "slots"?}')
    parser.add_argument("--config", metavar="DIR", type=Path, help="rules directory (default: <repo>/config)")
    parser.add_argument("--now", metavar="ISO", help="reference time for relative dates (aware ISO 8601)")
    parser.add_argument("--errors", action="store_true", help="with --eval: list the misclassified lines")


def _now(args: argparse.Namespace) -> datetime | None:
    if not getattr(args, "now", None):
        return None
    try:
        now = datetime.fromisoformat(args.now)
    except ValueError:
        raise ValueError(f"--now {args.now!r} is not an ISO 8601 time, e.g. 2026-11-23T10:00:00+08:00") from None
    if now.tzinfo is None:
        raise ValueError("--now needs a timezone offset, e.g. 2026-11-23T10:00:00+08:00")
    return now


def _dump(obj: dict[str, Any], out: IO[str]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _read_lines(source: str) -> Iterator[str]:
    if source == "-":
        yield from sys.stdin
        return
    yield from read_lines(source)


def classify_stream(classifier: Classifier, lines: Iterable[str], out: IO[str], now: datetime | None) -> None:
    """Classify each JSONL line {"text": ...}; a malformed line gets an error object instead."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _dump({"line": number, "error": f"invalid JSON: {exc.msg}"}, out)
            continue
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            _dump({"line": number, "error": 'expected an object with a string "text"'}, out)
            continue
        _dump(classifier.classify(text, now).to_json(), out)


class LabelledSetError(ValueError):
    """A labelled set that cannot be evaluated; the message names the line."""


def _labelled(number: int, line: str) -> tuple[str, str, dict[str, Any]]:
    """One labelled line's text, intent and slots; LabelledSetError naming what is wrong."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LabelledSetError(f"line {number}: invalid JSON: {exc.msg}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not isinstance(record.get("intent"), str):
        raise LabelledSetError(f'line {number}: expected an object with a string "text" and a string "intent"')
    slots = record.get("slots", {})
    if not isinstance(slots, dict):
        raise LabelledSetError(f'line {number}: "slots" must be an object')
    return record["text"], record["intent"], slots


def evaluate(classifier: Classifier, lines: Iterable[str], now: datetime | None) -> dict[str, Any]:
    """Accuracy, per-intent precision/recall/F1/count, slot agreement and the misclassified lines;
    LabelledSetError for a line without text or intent."""
    pairs: list[tuple[str, str, str]] = []
    slot_total = slot_hits = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text, intent, slots = _labelled(number, line)
        result = classifier.classify(text, now)
        pairs.append((text, intent, result.intent))
        for key, value in slots.items():
            slot_total += 1
            slot_hits += result.slots.get(key) == value
    per_intent: dict[str, dict[str, float]] = {}
    for intent in INTENTS:
        tp = sum(1 for _, gold, got in pairs if gold == intent and got == intent)
        predicted = sum(1 for _, _, got in pairs if got == intent)
        count = sum(1 for _, gold, _ in pairs if gold == intent)
        precision = tp / predicted if predicted else 0.0
        recall = tp / count if count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {"precision": precision, "recall": recall, "f1": f1, "count": count}
    correct = sum(1 for _, gold, got in pairs if gold == got)
    return {
        "total": len(pairs),
        "accuracy": correct / len(pairs) if pairs else 0.0,
        "slot_accuracy": slot_hits / slot_total if slot_total else 1.0,
        "per_intent": per_intent,
        "errors": [(text, gold, got) for text, gold, got in pairs if gold != got],
    }


def _print_report(report: dict[str, Any], out: IO[str], show_errors: bool) -> None:
    out.write(f"messages {report['total']}  accuracy {report['accuracy']:.3f}  "
              f"slot agreement {report['slot_accuracy']:.3f}\n")
    out.write(f"{'intent':<18}{'precision':>10}{'recall':>10}{'f1':>10}{'count':>8}\n")
    for intent, row in report["per_intent"].items():
        out.write(f"{intent:<18}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['count']:>8}\n")
    if show_errors:
        for text, gold, got in report["errors"]:
            out.write(f"  {gold} → {got}: {text}\n")


def _stdout_closed() -> int:
    """Whoever read our output has gone (`classify --eval FILE | head`): stop quietly, as the Unix
    tools do when SIGPIPE ends them, with 128 + SIGPIPE. What is still buffered goes to /dev/null,
    so the interpreter's own flush at exit has nothing to complain about."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a stdout without a file descriptor (captured, replaced)
        pass
    return 128 + signal.SIGPIPE


def run_classify(args: argparse.Namespace) -> int:
    """Run `classify` for parsed arguments; returns the exit code."""
    try:
        code = _run_classify(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _rules_problem(config: Path | None, exc: Exception) -> str:
    """One line saying why the rules in config (default <repo>/config) cannot be used."""
    where = config if config is not None else DEFAULT_CONFIG_DIR
    if isinstance(exc, OSError):
        return f"cannot read the rules in {where}: {exc.filename or where}: {exc.strerror or exc}"
    if isinstance(exc, NotUtf8):  # names the file: intents.toml or lexicon.txt
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"the rules in {where} are not UTF-8 text (byte {exc.start})"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"{Path(where) / INTENTS_FILE} is not valid TOML: {exc}"
    return f"the rules in {where} are refused: {exc}"


def _run_classify(args: argparse.Namespace) -> int:
    try:
        now = _now(args)
    except ValueError as exc:
        print(f"classify: {exc}", file=sys.stderr)
        return 2
    try:
        classifier = get_classifier(args.config)
    except (OSError, ValueError) as exc:  # a rules directory missing, a file not parsing or refused
        print(f"classify: {_rules_problem(args.config, exc)}", file=sys.stderr)
        return 2
    source = args.eval or args.jsonl
    try:
        if args.eval:
            _print_report(evaluate(classifier, _read_lines(args.eval), now), sys.stdout, args.errors)
            return 0
        if args.jsonl:
            classify_stream(classifier, _read_lines(args.jsonl), sys.stdout, now)
            return 0
    except BrokenPipeError:
        raise  # our output closed, not the file unreadable: run_classify stops quietly
    except OSError as exc:
        print(f"classify: cannot read {source}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # NotUtf8 from read_lines: the file and the byte
        print(f"classify: {exc if isinstance(exc, NotUtf8) else f'{source} is not UTF-8 text'}", file=sys.stderr)
        return 2
    except LabelledSetError as exc:
        print(f"classify: {source}: {exc}", file=sys.stderr)
        return 2
    if not args.texts:
        print("classify: give TEXT..., --jsonl FILE or --eval FILE", file=sys.stderr)
        return 2
    for text in args.texts:
        _dump(classifier.classify(text, now).to_json(), sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.intents.cli ...`: the same command without the console script."""
    parser = argparse.ArgumentParser(prog="communitybot classify", description=__doc__.splitlines()[0])
    add_classify_arguments(parser)
    return run_classify(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
