"""The load driver: simulated residents posting signed (optionally AES) messages to a webhook,
closed-loop for the maximum rate, or paced (open-loop) at a fixed rate for latency."""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import time
from dataclasses import dataclass, field

import aiohttp

from bench.conversations import ANOTHER, interjection, new_resident_after, pick
from bot.sim.wechat_client import WeChatSigner, text_xml


@dataclass
class Stats:
    """What one load phase measured."""

    messages: int = 0
    errors: int = 0
    retries: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages answered per second."""
        return self.messages / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q / 100 * len(data)))] * 1000

    def summary(self) -> dict[str, float]:
        """The figures as a flat dict."""
        return {
            "messages": self.messages,
            "errors": self.errors,
            "retries": self.retries,
            "msgs_per_s": round(self.rate, 1),
            "p50_ms": round(self.pct(50), 1),
            "p95_ms": round(self.pct(95), 1),
            "p99_ms": round(self.pct(99), 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 1) if self.latencies else 0.0,
        }


@dataclass
class Resident:
    """Where one simulated resident of the closed loop is: the rest of its conversation and the
    openid generation it talks under (a new one after a hand-off or a volunteer signup,
    bench.conversations.new_resident_after)."""

    generation: int = 0
    queue: list[str] = field(default_factory=list)
    renews: bool = False  # the conversation under way ends with a new openid

    def next_message(self, rng: random.Random) -> str:
        """The next message to send, a new conversation started when the last one ended."""
        if not self.queue:
            conversation = pick(rng)
            self.queue, self.renews = list(conversation), new_resident_after(conversation)
        return self.queue.pop(0)

    def answered(self, extra: str | None) -> None:
        """After the reply: say extra first (the script's answer to a question it does not have),
        or, at the end of a conversation after which a resident goes on as a new one, do so."""
        if extra is not None:
            self.queue.insert(0, extra)
        elif not self.queue and self.renews:
            self.generation += 1
            self.renews = False


class Driver:
    """Posts residents' messages to one webhook URL, as WeChat does.

    The closed loop's residents carry on across calls (the warm-up, then the measured phase): a
    conversation cut by one phase's end goes on in the next, and a resident who handed off in
    the warm-up stays a new one. Started afresh, each phase would send the warm-up's hand-off
    residents' scripts under the openid still waiting for staff (answered 已转给工作人员 instead
    of running the flows: 38% of a 10-second phase's messages, measured)."""

    def __init__(self, url: str, signer: WeChatSigner, *, encrypt: bool, retry_share: float, seed: int) -> None:
        self.url = url
        self.signer = signer
        self.encrypt = encrypt
        self.retry_share = retry_share
        self.rng = random.Random(seed)
        self.run_tag = secrets.token_hex(3)
        self.residents: dict[int, Resident] = {}

    async def _post(self, http: aiohttp.ClientSession, openid: str, text: str, stats: Stats) -> str | None:
        """Post one message (twice at once for a share of them, as WeChat retries); what the
        script says next before its own next message (conversations.interjection), if anything."""
        msg_id = self.rng.getrandbits(62)
        signed = self.signer.wrap(text_xml(openid, text, msg_id=msg_id), encrypt=self.encrypt)
        copies = 2 if self.rng.random() < self.retry_share else 1
        started = time.perf_counter()
        bodies: list[str] = []

        async def once() -> None:
            try:
                async with http.post(self.url, params=signed.params, data=signed.body) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        stats.errors += 1
                        if len(stats.error_samples) < 5:
                            stats.error_samples.append(f"{resp.status} {body[:120]!r}")
                    else:
                        bodies.append(body.decode("utf-8", "replace"))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    stats.error_samples.append(repr(exc))

        # A WeChat retry: the same signed message again, while the first is in flight.
        await asyncio.gather(*(once() for _ in range(copies)))
        stats.latencies.append(time.perf_counter() - started)
        stats.messages += copies
        stats.retries += copies - 1
        return next(filter(None, (self._interjection(body, signed.params) for body in bodies)), None)

    def _interjection(self, body: str, params: dict[str, str]) -> str | None:
        if body in ("", "success") or (ANOTHER not in body and not self.encrypt):
            return None  # plaintext replies are read without parsing when there is nothing to find
        reply = self.signer.unwrap(body, params)
        return interjection(str((reply or {}).get("Content", "")))

    async def closed_loop(self, residents: int, duration: float) -> Stats:
        """Every resident sends its next message as soon as the last is answered."""
        stats = Stats()
        deadline = time.perf_counter() + duration
        timeout = aiohttp.ClientTimeout(total=10)
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:

            async def resident(i: int) -> None:
                who = self.residents.setdefault(i, Resident())
                while time.perf_counter() < deadline:
                    text = who.next_message(self.rng)
                    openid = f"oBench{self.run_tag}{i:05d}g{who.generation}"
                    who.answered(await self._post(http, openid, text, stats))

            started = time.perf_counter()
            await asyncio.gather(*(resident(i) for i in range(residents)))
            stats.elapsed = time.perf_counter() - started
        return stats

    async def paced(self, rate: float, duration: float, residents: int) -> Stats:
        """Messages sent at a fixed rate regardless of answers (latency at a given load)."""
        stats = Stats()
        timeout = aiohttp.ClientTimeout(total=10)
        conn = aiohttp.TCPConnector(limit=0)
        scripts: dict[int, list[str]] = {}
        generations: dict[int, int] = {}  # bumped as in closed_loop (new_resident_after)
        whole: dict[int, list[str]] = {}
        busy: set[int] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
            tasks: list[asyncio.Task[None]] = []
            started = time.perf_counter()
            n = 0
            while (now := time.perf_counter()) - started < duration:
                due = started + n / rate
                if due > now:
                    await asyncio.sleep(due - now)
                i = n % residents
                n += 1
                if i in busy:  # one message at a time per resident, as a person types
                    continue
                script = scripts.get(i)
                if not script:
                    script = whole[i] = pick(self.rng)
                text, scripts[i] = script[0], script[1:]
                openid = f"oPace{self.run_tag}{i:05d}g{generations.get(i, 0)}"
                if not scripts[i] and new_resident_after(whole[i]):
                    generations[i] = generations.get(i, 0) + 1
                busy.add(i)

                async def send(i: int = i, text: str = text, openid: str = openid) -> None:
                    try:
                        extra = await self._post(http, openid, text, stats)
                        if extra is not None:  # asked whether it is the report made already: 2 next
                            scripts[i] = [extra, *scripts.get(i, [])]
                    finally:
                        busy.discard(i)

                tasks.append(asyncio.create_task(send()))
            await asyncio.gather(*tasks)
            stats.elapsed = time.perf_counter() - started
        return stats
