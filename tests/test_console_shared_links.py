"""A ticket's history shows what a resident shared as shared: a link as [链接] with its title and
its address (escaped; one to open only when http or https — a javascript: address is text), a
file as [文件] with its name and size, a mini-program card as [其他消息] with its title. A link
showed its title alone, as if the resident had typed 关于小区停车收费的通知. And the 居民补充 a
shared link or file makes on a waiting hand-off is shown once, as the message itself. Both
backends; a browser's look in tests/test_console_shared_links_browser.py."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console import auth
from bot.console.labels import Labels
from bot.services import Services
from storage.models import Ticket
from tests.staff_support import logged_in

Client = TestClient[Any, Any]
TITLE = "关于小区停车<b>收费</b>的通知 13912345678"


def _history(page: str) -> str:
    start = page.index('<ol class="timeline">')
    return re.sub(r"\s+", " ", page[start:page.index("</ol>", start)])


async def share(wx: Any, openid: str) -> None:
    """A resident asks for a person, then shares two links, a file, a sticker and a card."""
    assert "转接人工服务" in await wx.say(openid, "喂 有人吗 转人工")
    await wx.send("link", openid, Title=TITLE, Description="通知全文", Url="javascript:alert(document.cookie)")
    await wx.send("link", openid, Title="停车收费标准", Description="", Url="https://mp.weixin.qq.com/s/abc?x=1&y=\"2\"")
    await wx.send("file", openid, Title="材料<清单>.pdf", FileTotalLen="12345")
    await wx.say(openid, "【收到不支持的消息类型，暂无法显示】")
    await wx.send("miniprogrampage", openid, Title="社区团购")


async def test_a_shared_link_file_and_card_are_shown_as_shared_once(client: Client, services: Services, wx: Any) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await share(wx, "o_shares")
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.kind == "handoff"))).one()

    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    history = _history(page)
    assert '<b class="shared-mark">[链接]</b> 关于小区停车&lt;b&gt;收费&lt;/b&gt;的通知 13912345678' in history
    assert '<span class="shared-url">javascript:alert(document.cookie)</span>' in history
    assert 'href="javascript' not in page and "<b>收费</b>" not in page
    assert ('<a class="shared-url" href="https://mp.weixin.qq.com/s/abc?x=1&amp;y=&#34;2&#34;" target="_blank" '
            'rel="noopener noreferrer nofollow">') in history
    assert '<b class="shared-mark">[文件]</b> 材料&lt;清单&gt;.pdf <span class="hint">（12 KB）</span>' in history
    assert '<b class="shared-mark">[其他消息]</b> 社区团购' in history
    assert "[表情等微信未转来的消息]" in history
    # each once: the 居民补充 notes ([链接] 标题 地址) are the messages themselves
    assert history.count("关于小区停车") == 1 and history.count("停车收费标准") == 1
    assert history.count("材料&lt;清单&gt;.pdf") == 1 and history.count("社区团购") == 1
    assert "居民补充" in page[:page.index('<ol class="timeline">')]  # the summary's list keeps them
    assert '<dd id="resident-phone">—</dd>' in page  # a link's title is no phone of the resident's

    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    history = _history(await (await client.get(f"/console/tickets/{number}")).text())
    assert "13912345678" not in history and "139****5678" in history


def test_only_http_addresses_open(services: Services) -> None:
    labels = Labels(services.texts, services.tz, reveal=True)
    for url in ("javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x", "//evil.example/x",
                "http:///nohost", "https://a.example/x y", ""):
        shared = labels.shared("link", {"title": "t", "url": url})
        assert shared is not None and shared.href == "" and shared.url == url.strip()
    shared = labels.shared("link", {"title": "t", "url": "HTTPS://mp.weixin.qq.com/s/1"})
    assert shared is not None and shared.href == "HTTPS://mp.weixin.qq.com/s/1"
    assert labels.shared("text", {"title": "t"}) is None and labels.shared("image", {}) is None
    assert labels.shared("file", {"title": "a.pdf", "size": "x"}) is not None
    assert [labels.shared("file", {"title": "a", "size": n}).size for n in ("900", "2048", "3565158")] == ["900 B", "2 KB", "3.4 MB"]  # type: ignore[union-attr]
