"""Upgrades: a data directory written by an earlier release opens with everything in it
(functions, versions, aliases, layers, configs, queue messages, topics and subscriptions,
rules and buses, HTTP APIs, logs, IAM users, keys, roles and policies); the schema migrations
bring it up to date, and secrets an earlier release kept in plain text (IAM users' secret
keys) are sealed on the first open."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from helpers import data_dir_holds
from upgrade_fixture import populate, verify, verify_iam

DATA = Path(__file__).parent / "data"
RELEASES = sorted(p.name.removeprefix("datadir-").removesuffix(".tar.gz") for p in DATA.glob("datadir-*.tar.gz"))


@pytest.mark.parametrize("release", RELEASES)
def test_data_dir_of_an_earlier_release_opens_with_everything(server_factory, tmp_path, release):
    with tarfile.open(DATA / f"datadir-{release}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    keys = plain_text_keys(tmp_path / "data" / "iam.db")
    s = server_factory(tmp_path / "data")
    verify(s.endpoint)
    for key in keys:
        verify_iam(s.endpoint, key)
    s.stop()
    # Every database now carries its migrations' version.
    for db in ("nimbus.db", "events.db", "gateway.db", "queues.db", "topics.db"):
        version = sqlite3.connect(tmp_path / "data" / db).execute("PRAGMA user_version").fetchone()[0]
        assert version >= 1, (db, version)
    # The secret keys the release kept in plain text are sealed now, in every file.
    for key in keys:
        assert data_dir_holds(tmp_path / "data", key["SecretAccessKey"]) == []
    # And it opens again after the migrations ran.
    s.start()
    verify(s.endpoint)
    for key in keys:
        verify_iam(s.endpoint, key)


def plain_text_keys(iam_db: Path) -> list[dict]:
    """The IAM users' access keys an earlier release stored with their secret in plain text."""
    if not iam_db.exists():
        return []
    con = sqlite3.connect(iam_db)
    try:
        docs = [json.loads(d) for (d,) in con.execute("SELECT doc FROM access_keys")]
    finally:
        con.close()
    return [{"AccessKeyId": d["id"], "SecretAccessKey": d["secret"]} for d in docs if "secret" in d]


def test_everything_survives_a_restart(server_factory):
    s = server_factory()
    key = populate(s.endpoint)
    s.stop()
    s.start()
    verify(s.endpoint)
    verify_iam(s.endpoint, key)
