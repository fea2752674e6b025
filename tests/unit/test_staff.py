"""Staff sign-in: personal accounts, two factors, roles, idle expiry, and the records they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from renkei.testkit import staff_headers
from services.health_mgmt.config import Settings
from shared.errors import Conflict, Forbidden, InvalidRequest
from shared.http import Audited
from shared.service import ServiceSpec, build_app
from shared.staff import MAX_FAILURES, StaffMember
from shared.trust import Principal

CITY = "112224"
ROLES = {"clerk": frozenset({"people.read"}), "auditor": frozenset({"log.read"})}


def records_router() -> APIRouter:
    router = APIRouter()

    @router.get("/people/{person_key}", dependencies=[Depends(Audited("people.read", person_param="person_key"))])
    def read(person_key: str, member=Depends(StaffMember("people.read"))):
        return {"person_key": person_key, "by": member.user_id}

    return router


@pytest.fixture
def app(stack_files, nats_secured, database_url):
    user, password = stack_files.login(Principal("health_mgmt", CITY))
    pg = None if database_url.startswith("sqlite") else database_url
    settings = Settings(
        city=CITY, data_dir=stack_files.data_dir, nats_url=nats_secured.url, nats_user=user, nats_password=password,
        database_url=pg, staff_idle_minutes=1,
    )
    return build_app(ServiceSpec(name="health_mgmt", summary="health", routers=[records_router()], roles=ROLES), settings)


def login(client, user_id, password, code):
    return client.post("/staff/login", json={"user_id": user_id, "password": password, "totp": code})


def test_a_clerk_reads_with_the_role_and_is_logged(app):
    with TestClient(app) as client:
        headers = staff_headers(client, ["clerk"], user_id="k.tanaka")
        reply = client.get("/people/P-1", headers=headers)
        entries = app.state.context.oplog.entries()
    assert reply.json() == {"person_key": "P-1", "by": "k.tanaka"}
    assert ("k.tanaka", "staff", "people.read", "P-1", "ok") in {(e.actor, e.actor_kind, e.operation, e.person_key, e.outcome) for e in entries}
    assert ("k.tanaka", "staff.login", "ok") in {(e.actor, e.operation, e.outcome) for e in entries}


def test_without_session_or_without_the_permission_is_refused(app):
    with TestClient(app) as client:
        anonymous = client.get("/people/P-1")
        forged = client.get("/people/P-1", headers={"Authorization": "Bearer rks_made-up"})
        auditor = client.get("/people/P-1", headers=staff_headers(client, ["auditor"], user_id="a.suzuki"))
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    assert forged.status_code == 401
    assert auditor.status_code == 403 and "people.read" in auditor.json()["detail"]


def test_sign_in_needs_password_and_code_and_locks_after_failures(app):
    with TestClient(app) as client:
        account = app.state.context.staff.create_account("m.sato", "佐藤 美咲", "correct horse battery", ["clerk"])
        code = pyotp.TOTP(account.totp_secret).now()
        assert login(client, "m.sato", "wrong password!!", code).status_code == 401
        assert login(client, "m.sato", "correct horse battery", "000000" if code != "000000" else "111111").status_code == 401
        for _ in range(MAX_FAILURES - 2):
            login(client, "m.sato", "wrong password!!", code)
        locked = login(client, "m.sato", "correct horse battery", code)
        entries = app.state.context.oplog.entries("staff.login")
    assert locked.status_code == 401 and "locked" in locked.json()["detail"]
    assert sum(e.outcome == "http-401" and e.actor == "m.sato" for e in entries) == MAX_FAILURES + 1


def test_logout_ends_the_session(app):
    with TestClient(app) as client:
        headers = staff_headers(client, ["clerk"], user_id="y.ito")
        assert client.post("/staff/logout", headers=headers).status_code == 204
        after = client.get("/people/P-1", headers=headers)
    assert after.status_code == 401


def test_an_idle_session_expires(app, monkeypatch):
    with TestClient(app) as client:
        headers = staff_headers(client, ["clerk"], user_id="h.kato")
        assert client.get("/people/P-1", headers=headers).status_code == 200
        from shared import staff as staff_module

        later = staff_module.utcnow() + timedelta(minutes=2)
        monkeypatch.setattr(staff_module, "utcnow", lambda: later)
        expired = client.get("/people/P-1", headers=headers)
    assert expired.status_code == 401 and "inactivity" in expired.json()["detail"]


@pytest.mark.parametrize("user_id", ["admin", "shared", "Guest", ""])
def test_shared_ids_do_not_exist(app, user_id):
    with TestClient(app), pytest.raises(InvalidRequest, match="personal"):
        app.state.context.staff.create_account(user_id, "anyone", "a long enough password", ["clerk"])


def test_accounts_are_unique_and_contractors_are_marked(app):
    with TestClient(app) as client:
        app.state.context.staff.create_account("v.kimura", "木村 (vendor)", "a long enough password", ["clerk"], kind="contractor")
        with pytest.raises(Conflict):
            app.state.context.staff.create_account("v.kimura", "again", "a long enough password", ["clerk"])
        headers = staff_headers(client, ["clerk"], user_id="v.kimura2", kind="contractor")
        client.get("/people/P-9", headers=headers)
        entries = app.state.context.oplog.entries("people.read")
    assert [(e.actor, e.actor_kind) for e in entries] == [("v.kimura2", "contractor")]


def test_a_session_token_is_not_stored(app):
    from sqlalchemy import select

    from shared.models import StaffSession

    with TestClient(app) as client:
        token = staff_headers(client, ["clerk"], user_id="t.mori")["Authorization"].removeprefix("Bearer ")
        with app.state.context.db.session() as session:
            stored = [s.token_hash for s in session.scalars(select(StaffSession))]
    assert token not in stored and len(stored[0]) == 64


def test_the_cli_refuses_roles_the_service_does_not_know(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from renkei.cli import app as cli
    from services.health_mgmt import app as health_app

    monkeypatch.setattr(health_app, "SPEC", ServiceSpec(name="health_mgmt", summary="health", roles=ROLES))
    base = ["staff", "add", "--data", str(tmp_path), "--service", "health_mgmt", "--city", CITY, "--name", "田中 一郎", "--password-stdin"]
    created = CliRunner().invoke(cli, [*base, "--user", "k.tanaka", "--role", "clerk"], input="a long enough password\n")
    unknown = CliRunner().invoke(cli, [*base, "--user", "k.tanaka2", "--role", "superuser"], input="a long enough password\n")
    assert created.exit_code == 0 and "TOTP secret" in created.output, created.output
    assert unknown.exit_code == 1 and "superuser" in unknown.output


def _contractor(app, user_id: str) -> tuple[str, str]:
    password = "a long enough password"
    account = app.state.context.staff.create_account(user_id, "保守 作業者", password, ["clerk"], kind="contractor")
    return password, account.totp_secret


def test_a_contractor_signs_in_only_inside_a_window_the_city_approved(app, monkeypatch):
    from shared import staff as staff_module

    with TestClient(app) as client:
        directory = app.state.context.staff
        password, secret = _contractor(app, "v.sato")
        directory.create_account("m.suzuki", "鈴木 (情報政策課)", "a long enough password", ["auditor"])

        def sign_in():
            return login(client, "v.sato", password, pyotp.TOTP(secret).now())

        refused = sign_in()  # no window at all
        assert refused.status_code == 401 and "maintenance window" in refused.json()["detail"]

        now = staff_module.utcnow()
        later = directory.approve_window("v.sato", "DB index rebuild (保守)", now + timedelta(hours=2), now + timedelta(hours=3), "m.suzuki")
        assert sign_in().status_code == 401  # approved, but not yet open

        current = directory.approve_window("v.sato", "patch the OS (保守)", now - timedelta(minutes=5), now + timedelta(minutes=30), "m.suzuki")
        reply = sign_in()
        assert reply.status_code == 200
        assert staff_module.as_utc(datetime.fromisoformat(reply.json()["expires_at"])) <= now + timedelta(minutes=30)  # ends with the window
        headers = {"Authorization": f"Bearer {reply.json()['token']}"}
        assert client.get("/people/P-1", headers=headers).status_code == 200

        directory.revoke_window(current, "m.suzuki")  # the city withdraws its approval: the session ends now
        after = client.get("/people/P-1", headers=headers)
        assert after.status_code == 401 and "maintenance window" in after.json()["detail"]
        assert sign_in().status_code == 401

        # Inside the later window it works again, and only until that window ends.
        monkeypatch.setattr(staff_module, "utcnow", lambda: now + timedelta(hours=2, minutes=10))
        headers = {"Authorization": f"Bearer {sign_in().json()['token']}"}
        assert client.get("/people/P-2", headers=headers).status_code == 200
        monkeypatch.setattr(staff_module, "utcnow", lambda: now + timedelta(hours=3, minutes=1))
        assert client.get("/people/P-2", headers=headers).status_code == 401

        windows = [(w.id, w.purpose, w.approved_by, w.revoked_by) for w in directory.windows("v.sato")]
        entries = {(e.actor, e.operation, e.outcome) for e in app.state.context.oplog.entries()}
    assert windows == [(current, "patch the OS (保守)", "m.suzuki", "m.suzuki"), (later, "DB index rebuild (保守)", "m.suzuki", None)]
    assert ("v.sato", "staff.login", "http-401") in entries and ("v.sato", "people.read", "ok") in entries


def test_only_the_citys_staff_approve_a_window_and_only_for_a_contractor(app):
    from shared import staff as staff_module

    with TestClient(app):
        directory = app.state.context.staff
        _contractor(app, "v.abe")
        _contractor(app, "v.ono")
        directory.create_account("m.ueda", "上田", "a long enough password", ["auditor"])
        now = staff_module.utcnow()
        hour = (now, now + timedelta(hours=1))
        with pytest.raises(Forbidden):
            directory.approve_window("v.abe", "self-approval by a vendor", *hour, "v.ono")
        with pytest.raises(Forbidden):
            directory.approve_window("v.abe", "an unknown approver", *hour, "nobody.here")
        with pytest.raises(InvalidRequest, match="contractor"):
            directory.approve_window("m.ueda", "staff need no window", *hour, "m.ueda")
        with pytest.raises(InvalidRequest, match="purpose"):
            directory.approve_window("v.abe", "  ", *hour, "m.ueda")
        with pytest.raises(InvalidRequest, match="at most"):
            directory.approve_window("v.abe", "a week of access", now, now + timedelta(days=7), "m.ueda")
        with pytest.raises(InvalidRequest, match="over"):
            directory.approve_window("v.abe", "yesterday", now - timedelta(hours=3), now - timedelta(hours=2), "m.ueda")
        assert directory.windows() == []


def test_the_cli_approves_and_revokes_a_window_in_japan_time(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from renkei.cli import app as cli
    from services.health_mgmt import app as health_app
    from shared import staff as staff_module
    from shared.config import ServiceSettings
    from shared.service import open_database

    monkeypatch.setattr(health_app, "SPEC", ServiceSpec(name="health_mgmt", summary="health", roles=ROLES))
    where = ["--data", str(tmp_path), "--service", "health_mgmt", "--city", CITY]
    add = ["staff", "add", *where, "--password-stdin"]
    assert CliRunner().invoke(cli, [*add, "--user", "m.sato", "--name", "佐藤", "--role", "auditor"], input="a long enough password\n").exit_code == 0
    assert CliRunner().invoke(cli, [*add, "--user", "v.ikeda", "--name", "池田 (vendor)", "--role", "clerk", "--kind", "contractor"],
                              input="a long enough password\n").exit_code == 0
    start = (staff_module.utcnow() + timedelta(days=1)).replace(tzinfo=None, second=0, microsecond=0) + timedelta(hours=9)

    def window(approver: str) -> list[str]:
        return ["staff", "approve-window", *where, "--user", "v.ikeda", "--purpose", "年次保守", "--approved-by", approver,
                "--from", start.strftime("%Y-%m-%dT%H:%M"), "--until", (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")]

    approved = CliRunner().invoke(cli, window("m.sato"))
    assert approved.exit_code == 0, approved.output
    refused = CliRunner().invoke(cli, window("v.ikeda"))
    assert refused.exit_code == 1 and "only an active member" in refused.output
    revoked = CliRunner().invoke(cli, ["staff", "revoke-window", *where, "--window", "1", "--by", "m.sato"])
    assert revoked.exit_code == 0, revoked.output

    db = open_database(ServiceSettings(service="health_mgmt", city=CITY, data_dir=tmp_path))
    directory = staff_module.StaffDirectory(db, "test", timedelta(minutes=15), timedelta(hours=8))
    [stored] = directory.windows("v.ikeda")
    db.dispose()
    assert staff_module.as_utc(stored.starts_at) == start.replace(tzinfo=UTC) - timedelta(hours=9)  # 作業日時 in Japan time
    assert (stored.purpose, stored.approved_by, stored.revoked_by) == ("年次保守", "m.sato", "m.sato")
