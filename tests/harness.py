"""Real processes for the deployment and fault tests: `communitybot serve` workers on loopback,
a private Redis server that can be restarted, and a TCP proxy that can cut a connection to
PostgreSQL or Redis without touching the servers other tests use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One `communitybot serve` process with the given CB_* environment."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "CB_PORT": str(self.port), "CB_LOG_LEVEL": "WARNING"}
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the process."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving (returns at once; see wait_ready)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        """Wait until /healthz answers 200."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"server not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def said_serving_then_accepts(server: ServerProcess, timeout: float = 90) -> None:
    """Wait for serve's "serving on" line; the port must take a connection the moment it is said."""
    deadline = time.monotonic() + timeout
    while "serving on" not in server.log.read_text(errors="replace"):
        assert server.proc is not None and server.proc.poll() is None, server.log.read_text()[-3000:]
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.005)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass  # refused here was the line said before any worker listened


class PrivateRedis:
    """A redis-server of this test alone, on its own port, restartable."""

    def __init__(self, persist: bool = True) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cb-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        # persist=False: no append-only file (a load test that never restarts Redis needs no fsync).
        self.persist = persist

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait for PONG."""
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            # Persistence on, as production runs it, so a restart keeps dialogs and locks' state.
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its append-only file)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def cleanup(self) -> None:
        """Stop and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class TcpProxy:
    """Forwards a local port to a target; `cut()` drops every connection and refuses new ones
    until `restore()` — a database or Redis becoming unreachable for a while. `cut_at()` cuts
    at a chosen moment of what the client sends: a server lost in the middle of a write."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.open = True
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._trigger: tuple[bytes, int | bytes, int] | None = None  # pattern, where after it, arming
        self._armings = 0
        self.tripped = False
        # Called at an armed cut instead of cut(): the chunk is lost and the line stays open but
        # silent (see SilentNetwork), as behind a network cut, where nothing closes anything.
        self.on_trip: Callable[[], None] | None = None
        self._upstream_ports: set[int] = set()

    async def start(self) -> None:
        """Listen on 127.0.0.1:port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def cut_at(self, pattern: bytes, after: int | bytes = 0) -> None:
        """Cut everything when a client sends `pattern` (that chunk never arrives); with after=n,
        at the n-th chunk the same connection sends after the one carrying it; with after=b"...",
        at the first later chunk of that connection carrying those bytes (b"COMMIT")."""
        self._armings += 1
        self._trigger, self.tripped = (pattern, after, self._armings), False

    def _watcher(self) -> Callable[[bytes], bool]:
        """For one connection: whether a chunk it sends is where the armed cut happens."""
        since: dict[int, int] = {}  # chunks sent since the pattern, per arming

        def trips(data: bytes) -> bool:
            trigger = self._trigger
            if trigger is None:
                return False
            pattern, after, arming = trigger
            if arming in since:
                since[arming] += 1
            elif pattern in data:
                since[arming] = 0
            else:
                return False
            if after == 0 or (isinstance(after, bytes) and since[arming] and after in data) or since[arming] == after:
                self._trigger, self.tripped = None, True
                return True
            return False

        return trips

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    trips: Callable[[bytes], bool] | None = None) -> None:
        try:
            while data := await reader.read(65536):
                if trips is not None and trips(data):
                    if self.on_trip is None:
                        self.cut()
                        break
                    self.on_trip()
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        up_port = up_writer.get_extra_info("sockname")[1]
        self._upstream_ports.add(up_port)
        await asyncio.gather(self._pipe(reader, up_writer, self._watcher()), self._pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})
        self._upstream_ports.discard(up_port)

    def ports(self) -> set[int]:
        """The ports of both of its sides: where clients reach it, and the local ports of its open
        connections to the target (what a network cut between the two would silence)."""
        return {self.port, *self._upstream_ports}

    def cut(self) -> None:
        """Drop all connections and refuse new ones."""
        self.open = False
        for writer in list(self._writers):
            writer.close()

    def restore(self) -> None:
        """Accept connections again."""
        self.open = True

    async def close(self) -> None:
        """Stop listening."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class SilentNetwork:
    """A network cut on loopback: the kernel drops every TCP segment to or from the given ports
    (an nftables table of its own), so nothing is refused and nothing answers, as behind a cut
    cable or a firewall dropping packets. Needs nft and root (`make test` installs nftables)."""

    PREFIX = "cb_silent_"

    def __init__(self) -> None:
        self.table = f"{self.PREFIX}{os.getpid()}_{id(self)}"
        self.cutting = False
        self._sweep()

    def _sweep(self) -> None:
        """Lift the cuts of test processes that died before lifting theirs (a run killed by its
        timeout), so their ports do not stay silent."""
        listed = subprocess.run([self._exe(), "list", "tables"], check=True, capture_output=True, text=True, timeout=10)
        for line in listed.stdout.splitlines():
            name = line.split()[-1]
            pid = name[len(self.PREFIX):].split("_", 1)[0]
            if name.startswith(self.PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                self._nft(f"delete table inet {name}")

    def cut(self, ports: set[int]) -> None:
        """Drop everything to and from ports from now on."""
        listed = ", ".join(str(p) for p in sorted(ports))
        self._nft(
            f"table inet {self.table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
            f"  tcp dport {{ {listed} }} drop\n  tcp sport {{ {listed} }} drop\n }}\n}}\n"
        )
        self.cutting = True

    def restore(self) -> None:
        """Let packets through again."""
        if self.cutting:
            self._nft(f"delete table inet {self.table}")
            self.cutting = False

    @staticmethod
    def _exe() -> str:
        exe = shutil.which("nft") or "/usr/sbin/nft"
        if not os.path.exists(exe):
            raise RuntimeError("nft is not installed: run `make test`, or scripts/ensure_fault_tools.sh")
        return exe

    def _nft(self, script: str) -> None:
        subprocess.run([self._exe(), "-f", "-"], input=script.encode(), check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def log_dir() -> Iterator[Path]:
    """A temporary directory for process logs (printed on failure by the tests)."""
    path = Path(tempfile.mkdtemp(prefix="cb-procs-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class RecordingApi:
    """A stand-in for the official-account and WeCom APIs on loopback that answers every call
    `ok` and records it: tokens, customer-service/template messages, app messages, robot posts.
    Point CB_WECHAT_API_BASE and CB_WECOM_API_BASE at `url`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.records: list[dict[str, object]] = []
        self._runner: object | None = None

    @property
    def url(self) -> str:
        """Base URL of the stand-in."""
        return f"http://127.0.0.1:{self.port}"

    def calls(self, path: str) -> list[dict[str, object]]:
        """Recorded requests to one path (e.g. /cgi-bin/message/send)."""
        return [r for r in self.records if r["path"] == path]

    async def start(self) -> None:
        """Listen on 127.0.0.1:port."""
        from aiohttp import web

        async def token(request: web.Request) -> web.Response:
            self.records.append({"path": request.path, "query": dict(request.query), "body": None})
            return web.json_response({"errcode": 0, "access_token": "rec-token", "expires_in": 7200})

        async def call(request: web.Request) -> web.Response:
            body = await request.json()
            self.records.append({"path": request.path, "query": dict(request.query), "body": body})
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        app = web.Application()
        app.router.add_get("/cgi-bin/token", token)
        app.router.add_get("/cgi-bin/gettoken", token)
        app.router.add_post("/cgi-bin/{tail:.*}", call)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._runner = runner

    async def close(self) -> None:
        """Stop listening."""
        from aiohttp import web

        if isinstance(self._runner, web.AppRunner):
            await self._runner.cleanup()


class Resident:
    """One resident speaking to real server processes over HTTP, as WeChat's servers would:
    signed, plaintext or safe mode (AES), decoding the passive reply."""

    def __init__(self, http: aiohttp.ClientSession, openid: str, *, encrypt: bool) -> None:
        from bot.settings import load_settings
        from bot.sim.wechat_client import WeChatSigner

        settings = load_settings()
        self.http = http
        self.openid = openid
        self.encrypt = encrypt
        self.signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
        self.msg_id = int.from_bytes(os.urandom(6), "big") << 8

    async def post(self, base: str, xml: str) -> str:
        """Post one message XML to base/wechat; the reply's Content ('' for 'success')."""
        signed = self.signer.wrap(xml, encrypt=self.encrypt)
        async with self.http.post(f"{base}/wechat", params=signed.params, data=signed.body) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise AssertionError(f"{self.openid}: HTTP {resp.status} {body[:200]}")
        reply = self.signer.unwrap(body, signed.params)
        return "" if reply is None else str(reply.get("Content", ""))

    def text(self, content: str) -> str:
        """The XML of this resident's next text message (a fresh MsgId)."""
        from bot.sim.wechat_client import text_xml

        self.msg_id += 1
        return text_xml(self.openid, content, msg_id=self.msg_id)
