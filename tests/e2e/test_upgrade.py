"""Upgrades: a data directory written by an earlier release opens with everything in it
(functions, versions, aliases, layers, configs, queue messages, topics and subscriptions,
rules and buses, HTTP APIs, logs); the schema migrations bring it up to date."""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

import pytest

from upgrade_fixture import populate, verify

DATA = Path(__file__).parent / "data"
RELEASES = sorted(p.name.removeprefix("datadir-").removesuffix(".tar.gz") for p in DATA.glob("datadir-*.tar.gz"))


@pytest.mark.parametrize("release", RELEASES)
def test_data_dir_of_an_earlier_release_opens_with_everything(server_factory, tmp_path, release):
    with tarfile.open(DATA / f"datadir-{release}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    s = server_factory(tmp_path / "data")
    verify(s.endpoint)
    s.stop()
    # Every database now carries its migrations' version.
    for db in ("nimbus.db", "events.db", "gateway.db", "queues.db", "topics.db"):
        version = sqlite3.connect(tmp_path / "data" / db).execute("PRAGMA user_version").fetchone()[0]
        assert version >= 1, (db, version)
    # And it opens again after the migrations ran.
    s.start()
    verify(s.endpoint)


def test_everything_survives_a_restart(server_factory):
    s = server_factory()
    populate(s.endpoint)
    s.stop()
    s.start()
    verify(s.endpoint)
