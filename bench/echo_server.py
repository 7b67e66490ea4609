"""The baseline: a bare aiohttp + wechatpy echo webhook (verify, decrypt, parse, reply), plus
official-API stand-ins answering `ok`, so the bot's outbox has somewhere to send during a run.

    python -m bench.echo_server --port 18081 --token T --appid A --aes-key K
"""

from __future__ import annotations

import argparse

from aiohttp import web
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature


def make_app(token: str, appid: str, aes_key: str) -> web.Application:
    """The echo webhook at /wechat and API stand-ins under /cgi-bin/."""
    crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None

    async def wechat(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            return web.Response(status=403)
        body = await request.text()
        encrypted = q.get("encrypt_type") == "aes"
        if encrypted and crypto is not None:
            body = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        msg = parse_message(body)
        xml = create_reply(getattr(msg, "content", "") or "success", msg).render()
        if encrypted and crypto is not None:
            xml = crypto.encrypt_message(xml, q["nonce"], q["timestamp"])
        return web.Response(text=xml, content_type="application/xml")

    async def token_view(_request: web.Request) -> web.Response:
        return web.json_response({"access_token": "bench-token", "expires_in": 7200, "errcode": 0})

    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application(client_max_size=1024**2)
    app.router.add_post("/wechat", wechat)
    app.router.add_get("/cgi-bin/token", token_view)
    app.router.add_get("/cgi-bin/gettoken", token_view)
    app.router.add_post("/cgi-bin/{tail:.*}", ok)
    return app


def main() -> None:
    """Serve the baseline until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--appid", required=True)
    parser.add_argument("--aes-key", default="")
    args = parser.parse_args()
    web.run_app(make_app(args.token, args.appid, args.aes_key), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
