"""Benchmark of the monthly clinic-report import (``renkei import clinic-report``).

A register of N one- to two-year-olds (SQLite under a temporary folder) and one CP932 file
of N rows, one MR dose each, with one row in a hundred wrong in one of the ways the importer
reports. The import runs as the real command in a child process (draft and commit in one
run, ``--commit``): figures are its wall time, rows per second and peak memory (maximum
resident set size of the child), beside the baseline measured in the same run on the same
file: reading it with the ``csv`` module alone (decode and split), in a child process too.

Target: 100,000 rows in at most 20 s, validation included.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert

from services.health_mgmt.app import MIGRATIONS
from services.health_mgmt.clinics import put_clinic
from services.health_mgmt.models import Base, Subject
from services.health_mgmt.vouchers import voucher_number
from shared import migrate
from shared.db import Database, database_url
from shared.ids import integrated_address_number
from shared.models import KernelBase

CITY = "112224"
CLINICS = [f"11100{index:04d}" + "1" for index in range(40)]
HEADER = ["医療機関コード", "請求年月", "接種券番号", "生年月日", "予防接種の種類", "接種日", "診察区分", "ＬＯＴ－ＮＯ", "接種量", "体温", "接種医師名", "備考"]
AS_OF = date(2025, 3, 31)
ROOT = Path(__file__).resolve().parents[1]

# Each child reports its own peak resident memory (VmHWM of its own image) on its last
# line of standard error: the peak of this process, from before it loaded anything.
PEAK = """
import atexit, sys
def _peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.stderr.write('peak_kb=' + line.split()[1] + '\\n')
atexit.register(_peak)
"""
BASELINE = PEAK + """
import csv, io
text = open(sys.argv[1], 'rb').read().decode('cp932')
print(sum(1 for _ in csv.reader(io.StringIO(text, newline=''))))
"""
IMPORT = PEAK + """
import runpy
sys.argv = ['renkei-import', *sys.argv[1:]]
runpy.run_module('renkei', run_name='__main__')
"""


def prepare(folder: Path, rows: int, seed: int = 5) -> Path:
    """The register and the report; returns the report's path."""
    rng = random.Random(seed)
    db = Database(database_url(folder, "health_mgmt", CITY))
    migrate.upgrade(db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
    people, lines = [], []
    for index in range(rows):
        born = date(2023, 4, 1) + timedelta(days=rng.randrange(300))
        voucher = voucher_number(f"{index:09d}")
        people.append({
            "integrated_address_number": integrated_address_number(CITY, f"{index:09d}"), "voucher_number": voucher,
            "resident_code": None, "name": "越谷　太郎", "name_kana": "コシガヤ　タロウ", "sex": rng.choice(("male", "female")),
            "birth_date": born, "address": "埼玉県越谷市越ヶ谷一丁目1番1号", "status": "resident",
            "heart_kidney_respiratory_disability": False, "hiv_immune_disability": False, "hbv_perinatal_prophylaxis": False,
        })
        day = born + timedelta(days=370 + rng.randrange(60))
        line = [rng.choice(CLINICS), day.strftime("%Y%m"), voucher, born.strftime("%Y/%m/%d"), "ＭＲ", day.strftime("%Y/%m/%d"),
                "接種", f"MR{rng.randrange(10**4):04d}", "0.5", f"36.{rng.randrange(10)}", "越谷　医師", ""]
        fault = rng.randrange(100)
        if fault == 0:
            line[5] = (born + timedelta(days=200)).strftime("%Y/%m/%d")  # before the first birthday: not a routine dose
        elif fault == 1:
            line[3] = (born + timedelta(days=1)).strftime("%Y/%m/%d")  # someone else's voucher
        elif fault == 2:
            line[9] = "38.2"  # fever, and vaccinated
        lines.append(line)
    with db.session() as session:
        for start in range(0, rows, 10_000):
            session.execute(insert(Subject), people[start : start + 10_000])
        for code in CLINICS:
            put_clinic(session, code, f"越谷市内医院{code[-4:]}")
    db.dispose()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(lines)
    report = folder / "report.csv"
    report.write_bytes(buffer.getvalue().encode("cp932"))
    return report


def _child(args: list[str]) -> tuple[float, str, float]:
    """Wall time, standard output and peak memory (MB) of a child process."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak_kb=")]
    return elapsed, done.stdout, int(peak[-1].removeprefix("peak_kb=")) / 1024


def run(quick: bool = False) -> dict:
    rows = 2_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="renkei-bench-import-") as tmp:
        folder = Path(tmp)
        report = prepare(folder, rows)
        baseline_seconds, counted, baseline_peak = _child([sys.executable, "-c", BASELINE, str(report)])
        command = [sys.executable, "-c", IMPORT, "import", "clinic-report", str(report), "--data", str(folder),
                   "--city", CITY, "--commit", "--as-of", AS_OF.isoformat(), "--by", "bench", "--json"]
        import_seconds, output, import_peak = _child(command)
        result = json.loads(output)
        again_seconds, again, _ = _child(command)
        file_mb = report.stat().st_size / 2**20
    return {
        "benchmark": "clinic_import",
        "quick": quick,
        "rows": rows,
        "file_mb": round(file_mb, 2),
        "stored": result["stored"],
        "refused": result["refused"],
        "seconds_import": round(import_seconds, 2),
        "rows_per_second": round(rows / import_seconds, 1),
        "peak_memory_mb": round(import_peak, 1),
        "seconds_same_file_again": round(again_seconds, 2),
        "already_imported_again": json.loads(again)["already_imported"],
        "baseline_csv_seconds": round(baseline_seconds, 2),
        "baseline_csv_rows_per_second": round(int(counted) / baseline_seconds, 1),
        "baseline_csv_peak_memory_mb": round(baseline_peak, 1),
        "ratio_import_to_csv": round(import_seconds / baseline_seconds, 2),
        "target_seconds": 20,
        "within_target": (import_seconds <= 20) if not quick else None,
    }


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv[1:]), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
