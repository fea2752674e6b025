"""A clinic-report import killed (SIGKILL) while it commits leaves nothing half-stored:
the register holds none of the file's rows and no record of the import, and the same file
imported again afterwards stores every good row exactly once."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from services.health_mgmt.models import ClinicReportImport, Dose, Subject
from services.health_mgmt.vouchers import voucher_number
from shared.ids import integrated_address_number
from tests.unit.test_health_support import CITY, CLINIC, add_clinics, open_register, postgres_or_none

ROWS = 40_000
AS_OF = "2025-03-31"
HEADER = ["医療機関コード", "請求年月", "接種券番号", "生年月日", "予防接種の種類", "接種日", "診察区分"]
ROOT = Path(__file__).resolve().parents[2]


def populate(db) -> list[list[str]]:
    """``ROWS`` one-year-olds in the register, and a report of one MR dose for each."""
    people, report = [], []
    for index in range(ROWS):
        born = date(2023, 4, 1) + timedelta(days=index % 300)
        voucher = voucher_number(f"{index:09d}")
        people.append({
            "integrated_address_number": integrated_address_number(CITY, f"{index:09d}"), "voucher_number": voucher,
            "resident_code": None, "name": "越谷　太郎", "name_kana": "コシガヤ　タロウ", "sex": "male", "birth_date": born,
            "address": "埼玉県越谷市越ヶ谷一丁目1番1号", "status": "resident", "heart_kidney_respiratory_disability": False,
            "hiv_immune_disability": False, "hbv_perinatal_prophylaxis": False,
        })
        day = born + timedelta(days=400)
        report.append([CLINIC, day.strftime("%Y%m"), voucher, born.strftime("%Y/%m/%d"), "ＭＲ", day.strftime("%Y/%m/%d"), "接種"])
    with db.session() as session:
        for start in range(0, ROWS, 5000):
            session.execute(insert(Subject), people[start : start + 5000])
    return report


def write_report(path: Path, rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("cp932"))


def command(tmp_path: Path, database_url: str, report: Path) -> list[str]:
    args = [sys.executable, "-m", "renkei", "import", "clinic-report", str(report), "--data", str(tmp_path / "data"),
            "--city", CITY, "--commit", "--as-of", AS_OF, "--by", "k.tanaka", "--json"]
    if postgres_or_none(database_url):
        args += ["--database-url", database_url]
    return args


def state(db) -> tuple[int, int]:
    with db.session() as session:
        return session.scalar(select(func.count(Dose.id))), session.scalar(select(func.count(ClinicReportImport.id)))


def import_and_kill(args: list[str], delay: float) -> str:
    """Start the import, wait until it says it is storing, then SIGKILL it after ``delay`` s."""
    child = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stderr.readline()
        assert line.startswith("storing"), line + child.stderr.read()
        time.sleep(delay)
        running = child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        return "killed" if running else "finished"
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()


@pytest.mark.fault
@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_an_import_killed_mid_commit_never_half_lands(tmp_path, database_url, delay):
    db = open_register(tmp_path / "data", database_url)
    add_clinics(db)
    report = tmp_path / "report.csv"
    write_report(report, populate(db))
    args = command(tmp_path, database_url, report)

    outcome = import_and_kill(args, delay)
    doses, imports = state(db)
    if outcome == "killed":
        assert (doses, imports) == (0, 0), "a killed import left part of itself behind"
    else:  # it beat the kill: then it stored everything
        assert (doses, imports) == (ROWS, 1)

    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert state(db) == (ROWS, 1)
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["already_imported"] is True
    assert state(db) == (ROWS, 1)
    db.dispose()
