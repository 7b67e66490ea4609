"""The roster: validation, upserts, lookups, the CLI and loading at start, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import cli, roster
from bot.app import create_app
from bot.services import Services
from storage.models import AuditLog, Grid, Person

GOOD = """
[[grids]]
id = "G1"
name = "一网格"
buildings = ["1", "2号楼"]
workers = ["w1", "w2"]

[[people]]
id = "w1"
name = "甲"
roles = ["grid_worker"]

[[people]]
id = "w2"
name = "乙"
roles = ["grid_worker", "staff"]

[[people]]
id = "p1"
name = "食堂"
roles = ["provider"]
services = ["助餐"]
"""


def _write(tmp_path: Path, text: str, name: str = "roster.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _counts(svc: Services) -> tuple[int, int]:
    async with svc.sessions() as session:
        grids = await session.scalar(select(func.count()).select_from(Grid))
        people = await session.scalar(select(func.count()).select_from(Person))
    return int(grids or 0), int(people or 0)


async def test_import_lookups_and_update(services: Services, tmp_path: Path) -> None:
    changes = await roster.import_roster(services, _write(tmp_path, GOOD))
    assert changes.grids_added == ("G1",) and changes.people_added == ("w1", "w2", "p1")
    async with services.sessions() as session:
        assert [p.id for p in await roster.people_with_role(session, "grid_worker")] == ["w1", "w2"]
        assert [p.id for p in await roster.people_with_role(session, "staff")] == ["w2"]
        for said in ("2", "2号楼", "２号楼", " 1栋 "):
            grid = await roster.grid_of_building(session, said)
            assert grid is not None and grid.id == "G1", said
        assert await roster.grid_of_building(session, "9") is None
        assert (await roster.person(session, "p1")).services == ["助餐"]  # type: ignore[union-attr]
    again = await roster.import_roster(services, _write(tmp_path, GOOD))
    assert not again.changed and again.unchanged == 4
    edited = GOOD.replace('name = "甲"', 'name = "甲甲"').replace(
        '[[people]]\nid = "p1"\nname = "食堂"\nroles = ["provider"]\nservices = ["助餐"]\n', ""
    ).replace('buildings = ["1", "2号楼"]', 'buildings = ["1", "2", "3"]')
    changes = await roster.import_roster(services, _write(tmp_path, edited, "v2.toml"))
    assert changes.people_updated == ("w1",) and changes.people_deactivated == ("p1",)
    assert changes.grids_updated == ("G1",)
    async with services.sessions() as session:
        assert await roster.people_with_role(session, "provider") == []
        assert (await roster.person(session, "p1")).active is False  # type: ignore[union-attr]
        audits = (await session.execute(select(AuditLog.action))).scalars().all()
    assert audits.count("roster.import") == 2


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda s: s.replace('roles = ["grid_worker"]', 'roles = ["boss"]'), "person 'w1': unknown role 'boss'"),
        (lambda s: s + '[[grids]]\nid = "G2"\nname = "二"\nbuildings = ["1"]\nworkers = []\n', "building '1' is in two grids: 'G1' and 'G2'"),
        (lambda s: s.replace('workers = ["w1", "w2"]', 'workers = ["w1", "ghost"]'), "worker 'ghost' is not among people"),
        (lambda s: s.replace('workers = ["w1", "w2"]', 'workers = ["w1", "p1"]'), "worker 'p1' does not have the grid_worker role"),
        (lambda s: s.replace('services = ["助餐"]', ""), "provider without services"),
        (lambda s: s + "[[people]]\nid = \"w1\"\nname = \"x\"\nroles = [\"staff\"]\n", "person 'w1' appears twice"),
        (lambda s: s + "[extra]\nx = 1\n", "unknown top-level key(s): extra"),
        (lambda s: s.replace("[[grids]]", "[[grids]", 1), "is not valid TOML"),
    ],
)
async def test_invalid_rosters_are_refused_whole(
    services: Services, tmp_path: Path, edit: Any, problem: str
) -> None:
    await roster.import_roster(services, _write(tmp_path, GOOD))
    before = await _counts(services)
    bad = _write(tmp_path, edit(GOOD.replace('name = "甲"', 'name = "新名字"')), "bad.toml")
    with pytest.raises(roster.RosterError) as info:
        await roster.import_roster(services, bad)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert await _counts(services) == before
    async with services.sessions() as session:
        assert (await roster.person(session, "w1")).name == "甲"  # type: ignore[union-attr]


async def test_cli_import_prints_changes_and_refuses_bad(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CB_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", services.settings.redis_url)
    monkeypatch.setenv("CB_VAR_DIR", services.settings.var_dir)
    code = await asyncio.to_thread(cli.main, ["roster", "import", str(_write(tmp_path, GOOD))])
    out = capsys.readouterr().out
    assert code == 0 and "grids added: G1" in out and "people added: w1, w2, p1" in out
    bad = _write(tmp_path, GOOD.replace('roles = ["grid_worker"]', 'roles = ["boss"]'), "bad.toml")
    code = await asyncio.to_thread(cli.main, ["roster", "import", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "nothing loaded" in err and "unknown role 'boss'" in err
    code = await asyncio.to_thread(cli.main, ["roster", "import", str(tmp_path / "missing.toml")])
    assert code == 2 and "cannot read" in capsys.readouterr().err
    assert os.environ["CB_DATABASE_URL"] == services.settings.database_url


async def test_demo_roster_loads_at_start(client: TestClient[Any, Any], services: Services) -> None:
    async with services.sessions() as session:
        assert [p.id for p in await roster.people_with_role(session, "mediator")] == ["chenmediator"]
        grid = await roster.grid_of_building(session, "3号楼")
        assert grid is not None and grid.workers == ["wangwei"]


async def test_invalid_roster_stops_the_start(services: Services, tmp_path: Path) -> None:
    bad = _write(tmp_path, GOOD.replace('roles = ["grid_worker"]', 'roles = ["boss"]'))
    settings = services.settings.model_copy(update={"roster": str(bad)})
    app = create_app(settings, services=dataclasses.replace(services, settings=settings))
    with pytest.raises(roster.RosterError):
        async with TestClient(TestServer(app)):
            pass
    assert await _counts(services) == (0, 0)


async def test_routing_reads_the_roster_again_only_when_an_import_changed_it(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ticket asks for the roster; it is read from the database once, then again when an
    import in any process changed it (the version is in the shared store), or when it is old."""
    from bot.services import open_services

    path = _write(tmp_path, GOOD)
    await roster.import_roster(services, path)
    async with services.sessions() as session:
        first = await roster.snapshot(services, session)
        assert await roster.snapshot(services, session) is first
    assert [p.id for p in first.with_role("grid_worker")] == ["w1", "w2"]
    assert [(p.id, p.services) for p in first.with_role("provider")] == [("p1", ("助餐",))]
    grid = first.grid_of("２号楼")
    assert grid is not None and grid.id == "G1" and grid.workers == ("w1", "w2")
    assert first.grid_of("9") is None and first.grid_of(None) is None

    # An import that changes nothing keeps it.
    await roster.import_roster(services, path)
    async with services.sessions() as session:
        assert await roster.snapshot(services, session) is first

    # Another process (its own services on the same database and store) drops w1 and renames w2.
    other = open_services(services.settings, clock=services.clock)
    other.store.with_prefix(services.store.prefix)
    try:
        edited = GOOD.replace('workers = ["w1", "w2"]', 'workers = ["w2"]').replace('name = "乙"', 'name = "乙二"')
        edited = edited.replace('[[people]]\nid = "w1"\nname = "甲"\nroles = ["grid_worker"]\n', "")
        await roster.import_roster(other, _write(tmp_path, edited, "v2.toml"))
    finally:
        await other.close()
    async with services.sessions() as session:
        second = await roster.snapshot(services, session)
    assert second is not first
    assert [(p.id, p.name) for p in second.with_role("grid_worker")] == [("w2", "乙二")]
    assert second.grid_of("1") is not None and second.grid_of("1").workers == ("w2",)  # type: ignore[union-attr]

    # However quiet the imports, it is read again once old.
    monkeypatch.setattr(roster, "SNAPSHOT_MAX_AGE_S", 0.0)
    async with services.sessions() as session:
        assert await roster.snapshot(services, session) is not second


async def test_a_ticket_routed_after_another_process_imported_goes_by_the_new_roster(
    services: Services, tmp_path: Path
) -> None:
    from bot import dispatch, tickets
    from bot.services import open_services

    await roster.import_roster(services, _write(tmp_path, GOOD))

    async def route_one() -> str | None:
        async with services.sessions() as session, session.begin():
            ticket = await tickets.create_ticket(
                session, kind="complaint", resident=None, fields={}, now=services.clock.now(), tz=services.tz,
                actor="test", category="lighting", building="1",
            )
            found = await dispatch.route(services, session, ticket)
            return found.owner.id if found.owner else None

    assert await route_one() == "w1"  # least loaded, first listed
    other = open_services(services.settings, clock=services.clock)
    other.store.with_prefix(services.store.prefix)
    try:
        await roster.import_roster(other, _write(tmp_path, GOOD.replace('workers = ["w1", "w2"]', 'workers = ["w2"]'), "v2.toml"))
    finally:
        await other.close()
    assert await route_one() == "w2"
