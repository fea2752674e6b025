"""Fixtures that start real parts: nats-server from the wheel, SQLite or PostgreSQL databases."""

from __future__ import annotations

import pytest
from hypothesis import settings

from renkei.testkit import NatsServer, SecuredStackFiles, database_url_for_test

CITIES = ["112224", "112216"]

# Properties are checked for what they say, never for how fast: no per-example deadline
# (the machines are shared and noisy; speed is measured under bench/).
settings.register_profile("renkei", deadline=None)
settings.load_profile("renkei")


@pytest.fixture
def nats_plain(tmp_path):
    """A nats-server with JetStream and no authorization, for kernel mechanics."""
    folder = tmp_path / "nats-plain"
    folder.mkdir()
    server = NatsServer(folder, {}).start()
    yield server
    server.kill()


@pytest.fixture
def stack_files(tmp_path) -> SecuredStackFiles:
    return SecuredStackFiles(tmp_path / "data", CITIES)


@pytest.fixture
def nats_secured(tmp_path, stack_files):
    """A nats-server with one user per service and the permissions the stack derives."""
    folder = tmp_path / "nats-secured"
    folder.mkdir()
    server = NatsServer(folder, stack_files.nats_config()).start()
    yield server
    server.kill()


@pytest.fixture
def database_url(tmp_path):
    with database_url_for_test(tmp_path) as url:
        yield url
