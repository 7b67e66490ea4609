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
    grid = first.grid_for(_at("", building="２号楼"))
    assert grid is not None and grid.id == "G1" and grid.workers == ("w1", "w2")
    assert first.grid_for(_at("", building="9")) is None and first.grid_for(_at("")) is None

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
    grid = second.grid_for(_at("", building="1"))
    assert grid is not None and grid.workers == ("w2",)

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
                actor="test", category="照明", building="1",
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


REAL = """
[[grids]]
id = "R1"
name = "真实网格"
buildings = ["1", "2"]
workers = ["zhangsan"]

[[people]]
id = "zhangsan"
name = "张三"
roles = ["grid_worker"]

[[people]]
id = "boss"
name = "主任"
roles = ["staff", "admin"]
"""


def _demo_settings(services: Services) -> Any:
    """The services' settings with CB_ROSTER left unset: the shipped demo roster."""
    from bot.settings import load_settings

    return load_settings(**services.settings.model_dump(exclude={"roster"}))


async def _start(services: Services, settings: Any) -> None:
    """Start the app and stop it again: its start-up is what loads (or keeps) the roster."""
    app = create_app(settings, services=dataclasses.replace(services, settings=settings))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200


async def test_the_demo_roster_is_never_loaded_over_an_imported_one(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CB_ROSTER", raising=False)
    settings = _demo_settings(services)
    assert settings.roster_is_demo
    await roster.import_roster(services, _write(tmp_path, REAL), replace=True)
    await _start(services, settings)  # a restart without CB_ROSTER
    async with services.sessions() as session:
        grid = await roster.grid_of_building(session, "1")
        assert grid is not None and grid.id == "R1" and grid.workers == ["zhangsan"]
        assert [p.id for p in await roster.people_with_role(session, "staff")] == ["boss"]
        assert await roster.person(session, "wangwei") is None


async def test_the_demo_roster_fills_an_empty_database_at_start(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CB_ROSTER", raising=False)
    await _start(services, _demo_settings(services))
    async with services.sessions() as session:
        grid = await roster.grid_of_building(session, "3号楼")
        assert grid is not None and grid.workers == ["wangwei"]


async def test_an_operators_cb_roster_is_loaded_at_every_start_as_the_whole_roster(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await roster.import_roster(services, services.settings.roster_path)
    real = _write(tmp_path, REAL)
    monkeypatch.setenv("CB_ROSTER", str(real))
    from bot.settings import load_settings

    settings = load_settings(**services.settings.model_dump(exclude={"roster"}))
    assert not settings.roster_is_demo and settings.roster_path == real
    await _start(services, settings)
    async with services.sessions() as session:
        assert [p.id for p in await roster.people_with_role(session, "grid_worker")] == ["zhangsan"]
        assert (await roster.person(session, "wangwei")).active is False  # type: ignore[union-attr]


async def test_cli_import_merges_by_default_and_replaces_only_when_told(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CB_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", services.settings.redis_url)
    monkeypatch.setenv("CB_VAR_DIR", services.settings.var_dir)
    await roster.import_roster(services, _write(tmp_path, REAL))
    partial = _write(tmp_path, '[[people]]\nid = "lisi"\nname = "李四"\nroles = ["mediator"]\n', "partial.toml")

    code = await asyncio.to_thread(cli.main, ["roster", "import", str(partial)])
    out = capsys.readouterr().out
    assert code == 0 and "merged" in out and "people added: lisi" in out
    assert "kept, not in the file (--replace removes them): grids R1; people zhangsan, boss" in out
    async with services.sessions() as session:
        assert (await roster.grid_of_building(session, "1")) is not None
        assert [p.id for p in await roster.people_with_role(session, "staff")] == ["boss"]

    code = await asyncio.to_thread(cli.main, ["roster", "import", "--replace", "--dry-run", str(partial)])
    out = capsys.readouterr().out
    assert code == 0 and "--dry-run" in out and "grids removed: R1" in out and "people deactivated: zhangsan, boss" in out
    async with services.sessions() as session:
        assert (await roster.grid_of_building(session, "1")) is not None  # nothing changed

    code = await asyncio.to_thread(cli.main, ["roster", "import", "--replace", str(partial)])
    out = capsys.readouterr().out
    assert code == 0 and "--replace" in out and "grids removed: R1" in out and "people deactivated: zhangsan, boss" in out
    async with services.sessions() as session:
        assert await roster.grid_of_building(session, "1") is None
        assert [p.id for p in await roster.people_with_role(session, "mediator")] == ["lisi"]


async def test_a_merge_that_would_clash_with_what_is_kept_is_refused_whole(
    services: Services, tmp_path: Path
) -> None:
    await roster.import_roster(services, _write(tmp_path, REAL))
    clash = REAL.replace('id = "R1"', 'id = "R2"').replace('name = "真实网格"', 'name = "二网格"')
    with pytest.raises(roster.RosterError) as info:
        await roster.import_roster(services, _write(tmp_path, clash, "clash.toml"), replace=False)
    assert any("building '1' is in two grids: 'R2' and 'R1'" in p for p in info.value.problems), info.value.problems
    async with services.sessions() as session:
        assert await roster.grid(session, "R2") is None


async def test_a_merge_may_name_workers_the_database_holds(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A merged file's grid may list a worker it does not describe: the database's active one.
    The cross-references are checked once merged; --replace still needs them all in the file."""
    monkeypatch.setenv("CB_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", services.settings.redis_url)
    monkeypatch.setenv("CB_VAR_DIR", services.settings.var_dir)
    wt2 = (
        '[[grids]]\nid = "WT2"\nname = "望湖二"\nbuildings = ["5"]\nworkers = ["wuhao"]\n'
        '[[people]]\nid = "wuhao"\nname = "吴浩"\nroles = ["grid_worker"]\n'
    )
    gone = '[[people]]\nid = "gone"\nname = "离职"\nroles = ["grid_worker"]\n'
    await roster.import_roster(services, _write(tmp_path, REAL + wt2 + gone))
    await roster.import_roster(services, _write(tmp_path, REAL + wt2, "v1.toml"), replace=True)  # "gone" deactivated
    sunmei = '[[people]]\nid = "sunmei"\nname = "孙梅"\nroles = ["grid_worker"]\n'
    added = _write(tmp_path, '[[grids]]\nid = "WT2"\nname = "望湖二"\nbuildings = ["5"]\nworkers = ["wuhao", "sunmei"]\n'
                   + sunmei, "add.toml")

    code = await asyncio.to_thread(cli.main, ["roster", "import", str(added)])
    out = capsys.readouterr().out
    assert code == 0 and "people added: sunmei" in out and "grids updated: WT2" in out
    async with services.sessions() as session:
        grid = await roster.grid(session, "WT2")
        assert grid is not None and grid.workers == ["wuhao", "sunmei"]

    # Neither in the file nor active in the database: refused, naming it, nothing loaded.
    for ghost in ("ghost", "gone"):
        bad = _write(tmp_path, f'[[grids]]\nid = "WT2"\nname = "望湖二"\nbuildings = ["5"]\nworkers = ["wuhao", "{ghost}"]\n',
                     f"{ghost}.toml")
        code = await asyncio.to_thread(cli.main, ["roster", "import", str(bad)])
        assert code == 2 and f"grid 'WT2': worker '{ghost}' is not among people" in capsys.readouterr().err
    # The whole roster (--replace) must describe every worker it lists.
    code = await asyncio.to_thread(cli.main, ["roster", "import", "--replace", str(added)])
    assert code == 2 and "worker 'wuhao' is not among people" in capsys.readouterr().err
    async with services.sessions() as session:
        grid = await roster.grid(session, "WT2")
        assert grid is not None and grid.workers == ["wuhao", "sunmei"]


PLACES = GOOD.replace('workers = ["w1", "w2"]', 'workers = ["w1", "w2"]\nplaces = ["小区西门", "地下车库", "南门停车场"]') + (
    '[[grids]]\nid = "G2"\nname = "二网格"\nbuildings = ["3"]\nworkers = ["w3"]\nplaces = ["南门", "中心广场"]\n'
    '[[people]]\nid = "w3"\nname = "丙"\nroles = ["grid_worker"]\n'
)


def _at(landmark: str, building: str | None = None) -> Any:
    """A report's ticket as routing reads it: its building and fields."""
    from storage.models import Ticket

    return Ticket(building=building, fields={"place": landmark, "landmark": landmark})


async def test_a_grids_places_route_reports_naming_no_building(services: Services, tmp_path: Path) -> None:
    """A grid lists the common places it covers (places = ["小区西门", …]); a report naming no
    building but one of them belongs to that grid, the longest place found in the words winning
    (南门停车场 is G1's though G2 lists 南门); 小区 and full-width characters do not matter; a
    building named wins over a place; a place no grid lists is in none."""
    changes = await roster.import_roster(services, _write(tmp_path, PLACES))
    assert changes.grids_added == ("G1", "G2")
    async with services.sessions() as session:
        staff = await roster.snapshot(services, session)
        for said, grid in [("小区西门", "G1"), ("西门口", "G1"), ("西门那个路灯", "G1"), ("地下车库入口", "G1"),
                           ("南门停车场", "G1"), ("小区南门", "G2"), ("中心广场的路灯", "G2"), ("广场", None),
                           ("东门", None), ("", None)]:
            found = staff.grid_for(_at(said))
            assert (found.id if found else None) == grid, said
            row = await roster.grid_of_ticket(session, _at(said))
            assert (row.id if row else None) == grid, said
        assert staff.grid_for(_at("小区西门", building="3")).id == "G2"  # type: ignore[union-attr]
        assert staff.grid_for(_at("小区西门", building="9")) is None
        assert (await roster.grid(session, "G1")).places == ["西门", "地下车库", "南门停车场"]  # type: ignore[union-attr]
    again = await roster.import_roster(services, _write(tmp_path, PLACES))
    assert not again.changed
    moved = await roster.import_roster(services, _write(tmp_path, PLACES.replace('"小区西门", ', ""), "v2.toml"))
    assert moved.grids_updated == ("G1",)
    async with services.sessions() as session:
        assert (await roster.snapshot(services, session)).grid_for(_at("西门")) is None


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda s: s.replace('places = ["南门", "中心广场"]', 'places = ["小区西门"]'),
         "place '西门' is in two grids: 'G1' and 'G2'"),
        (lambda s: s.replace('places = ["南门", "中心广场"]', 'places = ["  "]'), "grid 'G2' has an empty place"),
        (lambda s: s.replace('places = ["南门", "中心广场"]', 'places = "南门"'), "grid 'G2': places must be a list of strings"),
    ],
)
async def test_a_roster_with_bad_places_is_refused_whole(
    services: Services, tmp_path: Path, edit: Any, problem: str
) -> None:
    with pytest.raises(roster.RosterError) as info:
        await roster.import_roster(services, _write(tmp_path, edit(PLACES)))
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert await _counts(services) == (0, 0)


async def test_a_merge_keeps_the_places_of_the_grids_it_does_not_name(services: Services, tmp_path: Path) -> None:
    await roster.import_roster(services, _write(tmp_path, PLACES))
    partial = '[[people]]\nid = "lisi"\nname = "李四"\nroles = ["mediator"]\n'
    await roster.import_roster(services, _write(tmp_path, partial, "partial.toml"), replace=False)
    async with services.sessions() as session:
        assert (await roster.grid(session, "G2")).places == ["南门", "中心广场"]  # type: ignore[union-attr]
    clash = '[[grids]]\nid = "G9"\nname = "九"\nbuildings = ["9"]\nworkers = []\nplaces = ["中心广场"]\n'
    with pytest.raises(roster.RosterError) as info:
        await roster.import_roster(services, _write(tmp_path, clash, "clash.toml"), replace=False)
    assert any("place '中心广场' is in two grids" in p for p in info.value.problems), info.value.problems
