"""What a serving process adds to the app: the startup heap frozen out of the collector's sight."""

from __future__ import annotations

import gc
from pathlib import Path

from bot.serve import freeze_startup_heap, worker_app
from bot.settings import load_settings


def test_a_serving_process_freezes_its_startup_heap_after_every_feature(tmp_path: Path) -> None:
    app = worker_app(load_settings(var_dir=str(tmp_path)))
    # Last: cleanup contexts (the classifier is warmed in one) start before it.
    assert app.on_startup[-1] is freeze_startup_heap


async def test_freezing_moves_what_is_alive_out_of_the_collectors_generations() -> None:
    kept = [[i] for i in range(1000)]  # alive for good, like jieba's dictionary
    try:
        await freeze_startup_heap(None)  # type: ignore[arg-type]
        assert gc.get_freeze_count() >= len(kept)
        collected = {id(o) for o in gc.get_objects()}  # the generations a collection walks
        assert all(gc.is_tracked(k) and id(k) not in collected for k in kept)
    finally:
        gc.unfreeze()  # tests create and drop apps: do not keep their objects forever
