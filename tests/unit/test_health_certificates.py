"""Results registered at the counter, certificates of vaccination issued from them (flow
[09]), and the reminder batch from the staff terminal; every route refuses outsiders."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.testkit import staff_headers
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import Certificate
from shared.service import build_app
from tests.unit.test_health_support import CITY, enrol, health_settings


@pytest.fixture
def health(stack_files, nats_secured, database_url):
    return build_app(SPEC, health_settings(stack_files, nats_secured, database_url))


def dose(record_type: str, day: str, **items) -> dict:
    return {"record_type": record_type, "items": {"inoculation_date": day, "examination_type": "inoculated", **items}}


def test_a_certificate_shows_the_given_doses_and_is_recorded(health, tmp_path):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10), name="越谷　証子")
        nurse = staff_headers(client, ["nurse"], user_id="n.sato")
        url = f"/subjects/{person['number']}/doses"
        mr = client.post(url, json=dose("mr", "2024-01-20", lot_number="MR123", inoculation_place="越谷こどもクリニック"), headers=nurse).json()
        client.post(url, json=dose("varicella", "2024-01-20", lot_number="V1"), headers=nurse)
        client.post(url, json={"record_type": "japanese_encephalitis", "items": {"inoculation_date": "2024-01-25", "examination_type": "screening_only"}}, headers=nurse)
        clerk = staff_headers(client, ["clerk"], user_id="c.ito")
        reply = client.post(f"/subjects/{person['number']}/certificates", json={"record_types": ["mr", "varicella"]}, headers=clerk)
        by_id = client.post(f"/subjects/{person['number']}/certificates", json={"dose_ids": [mr["id"]]}, headers=clerk)
        screening = client.post(f"/subjects/{person['number']}/certificates", json={"record_types": ["japanese_encephalitis"]}, headers=clerk)
        stranger = client.post(f"/subjects/{person['number']}/certificates", json={"dose_ids": [mr["id"] + 1000]}, headers=clerk)
        empty = client.post(f"/subjects/{person['number']}/certificates", json={}, headers=clerk)
        with health.state.context.db.session() as session:
            issued = session.scalars(select(Certificate).order_by(Certificate.id)).all()
        entries = health.state.context.oplog.entries("health_mgmt.certificate.issue")
    assert reply.status_code == 201 and reply.headers["content-type"] == "application/pdf"
    assert reply.headers["Certificate-Number"] == f"{CITY}-{issued[0].id:07d}"
    assert [(c.issued_by, len(c.dose_ids)) for c in issued] == [("c.ito", 2), ("c.ito", 1)]
    assert by_id.status_code == 201 and screening.status_code == 404 and stranger.status_code == 404 and empty.status_code == 422
    assert {(e.actor, e.person_key) for e in entries} == {("c.ito", person["number"])} and len(entries) == 5
    if shutil.which("pdftotext") is None:
        pytest.fail("poppler-utils (pdftotext) is needed to read the certificate")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(reply.content)
    text = "".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "予防接種済証" in text and "越谷証子" in text.replace("\u3000", "") and "令和6年1月20日" in text
    assert "ＭＲ" in text and "水痘" in text and "MR123" in text and "越谷こどもクリニック" in text and "第1期" in text


def test_the_reminder_batch_runs_from_the_terminal(health):
    with TestClient(health) as client:
        enrol(health.state.context.db, date(2024, 5, 10))
        clerk = staff_headers(client, ["clerk"], user_id="c.ito")
        body = {"period_start": "2025-06-01", "period_end": "2025-06-30", "as_of": "2025-06-01"}
        first = client.post("/reminders/runs", json=body, headers=clerk)
        second = client.post("/reminders/runs", json=body, headers=clerk)
        runs = client.get("/reminders/runs", headers=clerk).json()
        backwards = client.post("/reminders/runs", json={**body, "period_end": "2025-05-01"}, headers=clerk)
        nurse = client.post("/reminders/runs", json=body, headers=staff_headers(client, ["nurse"]))
    assert first.status_code == 201 and first.json()["notices"] == 1 and first.json()["started_by"] == "c.ito"
    assert second.json()["notices"] == 0 and second.json()["already_sent"] == first.json()["items"]
    assert [r["id"] for r in runs] == [second.json()["id"], first.json()["id"]]
    assert backwards.status_code == 422 and nurse.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [("post", "/subjects/{number}/certificates", {"json": {"record_types": ["mr"]}}),
     ("post", "/reminders/runs", {"json": {"period_start": "2025-06-01", "period_end": "2025-06-30"}}),
     ("get", "/reminders/runs", {})],
)
def test_outsiders_are_refused(health, method, path, kwargs):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10))
        reply = getattr(client, method)(path.format(number=person["number"]), **kwargs)
    assert reply.status_code == 401 and reply.headers["content-type"] == "application/problem+json"
