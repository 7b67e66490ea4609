"""deploy/'s nginx and systemd samples, checked by the tools that load them: `nginx -t` on the
sample as shipped (only its certificate paths pointed at a throwaway self-signed pair), that same
nginx in front of a real `serve` answering a signed resident over HTTPS, and `systemd-analyze
verify` on the unit (warnings count as failures: systemd only ignores a misspelt key)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from storage.migrate import upgrade
from tests.harness import Resident, ServerProcess, free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
CERT_DIR = "/etc/ssl/communitybot/"


def _tool(name: str) -> str:
    """The tool's path: `make test` installs it (scripts/ensure_deploy_tools.sh)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    assert found, f"{name} is not installed: run `make deploy-tools`"
    return found


def _nginx_prefix(tmp_path: Path, site: str) -> Path:
    """A prefix holding a self-signed pair, the given site and an http block including it."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bot.test",
         "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem")],
        check=True, capture_output=True,
    )
    assert CERT_DIR in site, "the sample no longer names its certificate where the README says"
    (tmp_path / "site.conf").write_text(site.replace(CERT_DIR, f"{tmp_path}/"))
    (tmp_path / "logs").mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    return main


def _nginx(main: Path, *args: str) -> list[str]:
    return [_tool("nginx"), "-p", str(main.parent), "-e", str(main.parent / "logs" / "error.log"), "-c", str(main), *args]


def test_the_nginx_sample_passes_nginx_t_and_points_where_the_unit_listens(tmp_path: Path) -> None:
    site = (DEPLOY / "nginx.conf").read_text()
    checked = subprocess.run(_nginx(_nginx_prefix(tmp_path, site), "-t"), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # The upstream is where the unit's serve and gunicorn's bind listen.
    upstream = re.search(r"upstream communitybot \{\s*server ([\d.]+:\d+);", site)
    assert upstream, site
    assert f"--host {upstream[1].replace(':', ' --port ')}" in (DEPLOY / "communitybot.service").read_text()
    assert f'bind = "{upstream[1]}"' in (DEPLOY / "gunicorn.conf.py").read_text()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    """One real `serve` on the embedded default (simulator off), as nginx's upstream."""
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    server = ServerProcess(
        {"CB_VAR_DIR": str(tmp_path / "var"), "CB_SIMULATOR": "0", "CB_TRUSTED_PROXIES": "127.0.0.1"}, tmp_path, "serve"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_through_the_nginx_sample_a_signed_resident_is_answered(tmp_path: Path, served: ServerProcess) -> None:
    await served.wait_ready()
    port = free_port()
    site = (DEPLOY / "nginx.conf").read_text()
    site = re.sub(r"listen 443 ssl[^;]*;", f"listen 127.0.0.1:{port} ssl;", site)
    site = re.sub(r"server 127\.0\.0\.1:\d+;", f"server 127.0.0.1:{served.port};", site)
    site = site.replace("allow 10.0.0.0/8;", "allow 10.0.0.0/8;\n        allow 127.0.0.2;  # the test's monitoring")
    (tmp_path / "nginx").mkdir()
    main = _nginx_prefix(tmp_path / "nginx", site)
    proc = subprocess.Popen(_nginx(main, "-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"https://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            for _ in range(50):  # nginx listens within a moment
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        assert resp.status == 200, await resp.text()
                        break
                except aiohttp.ClientConnectorError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    await asyncio.sleep(0.1)
            for encrypt in (False, True):
                resident = Resident(http, f"oNginx{int(encrypt)}", encrypt=encrypt)
                assert "您好" in await resident.post(base, resident.text("你好"))
            signed = resident.signer.wrap(resident.text("你好"))
            async with http.post(f"{base}/wechat", params=signed.params, data=b"x" * (2 << 20)) as resp:
                assert resp.status == 413  # nginx refuses it before the app reads it
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 403  # the monitoring network only
            # Every location gets the edge's headers: the client's own X-Request-Id (and
            # X-Forwarded-For) are replaced, on /metrics as on /, for the one allowed to scrape it.
            monitoring = aiohttp.TCPConnector(ssl=False, local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=monitoring) as scraper:
                for path in ("/healthz", "/metrics"):
                    async with scraper.get(f"{base}{path}", headers={"X-Request-Id": "from-the-client"}) as resp:
                        assert resp.status == 200, path
                        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-Id"]), (path, resp.headers)
                        if path == "/metrics":
                            assert "cb_messages_total" in await resp.text()
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit = (DEPLOY / "communitybot.service").read_text()
    # The paths the unit names, as the README's install steps make them.
    for exe in {m for m in re.findall(r"^Exec\w+=(\S+)", unit, re.M)}:
        path = root / exe.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    env = re.search(r"^EnvironmentFile=(\S+)", unit, re.M)
    assert env, unit
    (root / env[1].lstrip("/")).parent.mkdir(parents=True)
    shutil.copy(DEPLOY / "env.example", root / env[1].lstrip("/"))
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/communitybot.service").write_text(unit)
    checked = subprocess.run(
        [_tool("systemd-analyze"), "verify", f"--root={root}", "--man=no", "communitybot.service"],
        capture_output=True, text=True,
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
