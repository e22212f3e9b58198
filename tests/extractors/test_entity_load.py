"""``ExtractRun.load``: the one transaction every entity load of every source runs in (begin -> dead letters ->
reads -> land, or abort on any error). Real landing, state and dead-letter stores on a tmp dir."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from conftest import read_load, run_kwargs, visible_loads
from extractors.common.http import HttpConfig, make_rest_client
from extractors.common.runner import EntityLoad, ExtractRun
from extractors.common.settings import iso

UTC = timezone.utc
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)


def new_run(dirs) -> ExtractRun:
    return ExtractRun("testsrc", history_start=START, **run_kwargs(dirs, START, END))


def things(*ids):
    return pa.table({"id": pa.array(list(ids), pa.string())})


def tmp_dirs(dirs, entity="things"):
    edir = dirs["raw"] / "testsrc" / entity
    return [p for p in os.listdir(edir) if p.startswith(".tmp-")] if edir.exists() else []


def dead_letters(dirs):
    root = dirs["deadletter"] / "testsrc"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json")) if root.exists() else []


def test_a_load_that_lands_publishes_its_rows_ledger_and_cursor_together(dirs):
    run = new_run(dirs)
    win = run.window("things", lookback=END - START)
    with run.load("things") as ctx:
        ctx.deadletters.write("bad page", method="GET", url="http://x/p?page=2", status=200, payload="{trunc")
        row = ctx.land(win, EntityLoad("things", tables=[things("a", "b", "a")], ids=["a", "b", "a"],
                                       extra_meta={"read_via": "test"}))
    assert ctx.row is row and run.loads == [row]
    assert visible_loads(dirs["raw"], "testsrc", "things") == [row["path"]]
    assert tmp_dirs(dirs) == []
    rows, meta = read_load(row["path"])
    assert [r["id"] for r in rows] == ["a", "b", "a"]
    assert (meta["rows"], meta["dead_letters"], meta["duplicates_in_load"]) == (3, 1, 1)
    assert (meta["load_id"], meta["read_via"], meta["mode"]) == (ctx.load_id, "test", "incremental")
    assert (row["rows"], row["dead_letters"], row["duplicates_in_load"]) == (3, 1, 1)
    state = json.loads((dirs["state"] / "testsrc.json").read_text())
    assert state["entities"]["things"] == {"cursor": iso(END), "last_load_id": ctx.load_id}
    assert row["cursor_after"] == meta["cursor_after"] == iso(END)
    assert dead_letters(dirs) == [f"{ctx.load_id}/0.json"]


class ReadFailed(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["read", "land"])
def test_a_failure_inside_the_load_aborts_it_leaving_no_partial_file_and_the_cursor_unchanged(dirs, where):
    first = new_run(dirs)
    with first.load("things") as ctx:
        landed = ctx.land(first.window("things", END - START), EntityLoad("things", tables=[things("a")], ids=["a"]))
    state_before = (dirs["state"] / "testsrc.json").read_text()

    run = new_run(dirs)
    win = run.window("things", END - START)
    with pytest.raises((ReadFailed, ValueError)) as raised:
        with run.load("things") as ctx:
            ctx.open_writer().write_table(things("b", "c"))      # a part already written into the temp dir
            ctx.deadletters.write("bad page", method="GET", url="http://x/p", status=200, payload="{")
            assert tmp_dirs(dirs) == [f".tmp-{ctx.load_id}"]
            if where == "read":
                raise ReadFailed("the source went away mid-entity")
            # land's own failure after its parts were written: an extra key that clashes with the contract
            ctx.land(win, EntityLoad("things", tables=[things("d")], ids=["d"], extra_meta={"rows": 1}))
    assert raised.type is (ReadFailed if where == "read" else ValueError)   # the error itself, unchanged
    assert ctx.row is None and run.loads == []
    assert visible_loads(dirs["raw"], "testsrc", "things") == [landed["path"]]
    assert tmp_dirs(dirs) == []                                            # no partial file anywhere
    assert (dirs["state"] / "testsrc.json").read_text() == state_before    # cursor unchanged
    assert dead_letters(dirs) == [f"{ctx.load_id}/0.json"]                 # the dead letter stays for review


def test_leaving_a_load_without_landing_it_is_an_error_and_leaves_nothing(dirs):
    run = new_run(dirs)
    with pytest.raises(RuntimeError, match="left without landing"):
        with run.load("things") as ctx:
            ctx.open_writer().write_table(things("a"))
    assert tmp_dirs(dirs) == [] and visible_loads(dirs["raw"], "testsrc", "things") == []
    assert not (dirs["state"] / "testsrc.json").exists() and run.loads == []


def test_the_load_hands_its_dead_letter_store_to_the_http_client(dirs):
    client = make_rest_client("testsrc", "http://127.0.0.1:9", HttpConfig(), secrets=[])
    run = new_run(dirs)
    with pytest.raises(ReadFailed):
        with run.load("things", client=client) as ctx:
            assert client.checker.deadletters is ctx.deadletters
            raise ReadFailed("stop")
