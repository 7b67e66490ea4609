"""Every key an audit row's detail can hold has Chinese words on the audit log page: a login's
read ip：127.0.0.1 (and failures, retry_at, a resident's erasure tickets_anonymised …) in lower-case
English. The keys are read from the code that writes audit rows, so a new one without words fails
here. Both backends for the page."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.console.labels import Labels
from bot.services import Services
from bot.texts import Texts
from tests.staff_support import logged_in, login
from tests.test_console_audit_words import _details

Client = TestClient[Any, Any]
BOT = Path(__file__).resolve().parents[1] / "bot"
# the writers' own parameters (audit(session, actor, action, target, now, detail), _audit(..., **detail))
PARAMETERS = {"session", "actor", "action", "target", "now", "detail", "created_at", "svc", "via", "reason"}
# keys written through a variable or a subscript rather than a literal in the call
INDIRECT = {"locked_until", "included_again", "job", "quota_used", "note", "owner_told", "assignee", "previous"}


def _written_keys() -> set[str]:
    """The keys of every audit detail the code writes: dict literals in a call of audit, _audit,
    AuditLog and the like, keywords of a **detail writer, and dicts assigned to a `detail`."""
    keys = set(INDIRECT)
    for path in BOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None) or ""
                if "audit" not in name.lower() and name != "AuditLog":
                    continue
                keys |= {kw.arg for kw in node.keywords if kw.arg and kw.arg not in PARAMETERS and name != "AuditLog"}
                keys |= {k.value for sub in ast.walk(node) if isinstance(sub, ast.Dict)
                         for k in sub.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if isinstance(target, ast.Name) and target.id == "detail" and isinstance(node.value, ast.Dict):
                    keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return keys


def test_every_detail_key_written_has_words() -> None:
    texts = Texts()
    keys = _written_keys()
    assert {"ip", "failures", "retry_at", "tickets_anonymised", "media_id"} <= keys  # the scan finds them
    missing = sorted(k for k in keys if not texts.has(f"console.audit_details.{k}"))
    assert missing == [], f"[console.audit_details] has no words for {missing}"
    assert all(not texts.get(f"console.audit_details.{k}").isascii() for k in keys)


def test_a_throttled_login_and_an_erasure_read_in_words() -> None:
    labels = Labels(Texts(), "Asia/Shanghai")
    shown = dict(labels.audit_detail({"ip": "unknown", "failures": 12, "retry_at": "2026-11-23T02:15:00+00:00",
                                      "refused": 3, "last_at": "2026-11-23T02:10:00+00:00"}, "console.login_throttled"))
    assert shown == {"来源地址": "未知", "连续失败次数": "12", "可再试时间": "11-23 10:15", "被拒次数": "3",
                     "最近一次": "11-23 10:10"}
    erased = dict(labels.audit_detail({"tickets_anonymised": 2, "messages_cleared": 14}, "resident_erased"))
    assert erased == {"已匿名化的工单": "2", "已清除的消息": "14"}


async def test_the_audit_page_names_a_logins_address(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    assert (await login(client, "liu", "wrong-one")).status != 303
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    failed = _details(page, "console.login_failed")
    assert failed and all("来源地址：127.0.0.1" in row for row in failed), failed
    cells = " ".join(failed + _details(page, "console.login"))
    assert not re.search(r"\b(ip|failures|known|role)：", cells), cells
