"""WAL checkpoints of the embedded SQLite files, on a thread instead of inside a reply.

In WAL mode a commit appends the pages it changed to the write-ahead log; once the log passes
`wal_autocheckpoint` pages (1,000 by default) the committing connection copies it back into the
database file before its commit returns. On the embedded default every connection runs inline on
the event loop (storage.sqlite_inline), so that copy stalled whichever message happened to commit
then: 18 of 2,325 commits in a run of the benchmark's conversations took over 2 ms (up to 10 ms)
and held 57% of all commit time.

The serving process instead checkpoints every CHECKPOINT_EVERY_S on a worker thread, with its own
connection (`PRAGMA wal_checkpoint(PASSIVE)`: it copies what no reader still needs and never
blocks a writer; the sqlite3 module releases the GIL while SQLite works, so the loop keeps
serving meanwhile). Every connection keeps an automatic checkpoint only as a backstop, at
BACKSTOP_PAGES, for a process that does not run this (the CLI) or a log that outgrows the thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000  # ~40 MB of log at SQLite's 4 KB pages
CHECKPOINT_EVERY_S = 0.5


def checkpoint(path: str | Path) -> tuple[int, int, int]:
    """One passive checkpoint of the database at path: (busy, log pages, pages checkpointed)."""
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
    try:
        busy, pages, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(done)
    finally:
        conn.close()


async def run(paths: Sequence[str | Path], every_s: float = CHECKPOINT_EVERY_S) -> None:
    """Checkpoint each of paths every every_s seconds on a worker thread, until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        for path in paths:
            try:
                await asyncio.to_thread(checkpoint, path)
            except sqlite3.Error:  # the backstop still bounds the log; try again next time
                log.warning("WAL checkpoint of %s failed", path, exc_info=True)
