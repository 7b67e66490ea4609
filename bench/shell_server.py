"""A second reference for the benchmark: the bot's own webhook with the dialog taken out.

    python -m bench.shell_server [serve options]      # the environment of `communitybot serve`

Runs `communitybot serve` in this process with `bot.dialog.handle` answering every message with
one fixed text. Everything around the dialog runs as in the bot: the signature check, decryption
and parsing, the request id, de-duplication across WeChat's retries (`answer_once` and its
state-store writes), the reply's rendering, the outbox sender and the scheduler; what does not
run is the dialog itself (the resident's lock, dialog state, the message's transaction, routing,
flows, tickets). Its throughput against the echo baseline is the ceiling the webhook itself puts
on the bot's ratio: `communitybot bench --shell` measures it in the same run.

A benchmark instrument only: nothing a resident talks to is served this way.
"""

from __future__ import annotations

import sys

FIXED_REPLY = "ok"


def main(argv: list[str] | None = None) -> int:
    """Serve with the dialog replaced by FIXED_REPLY."""
    from bot import dialog
    from bot.cli import main as cli_main
    from bot.inbound import Inbound
    from bot.services import Services

    async def fixed_reply(_svc: Services, _inbound: Inbound, delivery: str | None = None) -> str:
        return FIXED_REPLY

    dialog.handle = fixed_reply  # the webhook looks it up on the module for every message
    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
