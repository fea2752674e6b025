"""The ops console in a real browser, against a stack of real processes started by ``renkei up``.

Headless Chromium from Debian (``/usr/bin/chromium``) driven by Playwright: an operator signs
in with password and TOTP, sees every service ready, then one service is killed and the page,
without a reload, marks it down. Screenshots are kept in the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from renkei.processes import is_running
from renkei.stack import RunRecord, run_file
from renkei.testkit import database_url_for_test

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALL_ROWS_IN_STATE = """([count, state]) => {
  const rows = [...document.querySelectorAll('#services tbody tr')];
  return rows.length === count && rows.every((row) => row.dataset.state === state);
}"""
ROW_IN_STATE = """([principal, state]) => {
  const row = document.querySelector(`#services tbody tr[data-principal="${principal}"]`);
  const node = document.querySelector(`#topology g.node[data-principal="${principal}"]`);
  return row !== null && node !== null && row.dataset.state === state && node.dataset.state === state;
}"""


def renkei(*args: str, env: dict, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "renkei", *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def stack(tmp_path):
    """A stack of real processes (on its own PostgreSQL database when tests run on PostgreSQL)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install Debian's chromium package to run the browser test")
    data = tmp_path / "var"
    env = os.environ.copy()
    with database_url_for_test(tmp_path) as url:
        if not url.startswith("sqlite"):
            env["RENKEI_DATABASE_URL"] = url
        try:
            up = renkei("up", "--detach", "--data", str(data), env=env)
            assert up.returncode == 0, up.stdout + up.stderr
            yield data, env
        finally:
            renkei("down", "--data", str(data), env=env)


def operator_account(data: Path, env: dict) -> tuple[str, str, str]:
    user, password = "o.browser", "correct horse battery staple"
    added = renkei(
        "staff", "add", "--service", "ops_console", "--user", user, "--name", "Ops Browser", "--role", "ops_operator",
        "--password-stdin", "--data", str(data), env=env, stdin=password + "\n",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    secret = re.search(r"TOTP secret: ([A-Z2-7]+)", added.stdout)
    assert secret, added.stdout
    return user, password, secret.group(1)


def test_the_console_shows_the_stack_and_a_service_going_down(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    data, env = stack
    record = RunRecord.load(run_file(data))
    console_url = next(m.url for m in record.services if m.service == "ops_console")
    victim = next(m for m in record.services if m.service == "welfare_address" and m.city == "112216")
    user, password, secret = operator_account(data, env)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.goto(console_url)
            page.wait_for_selector("#sign-in-form", state="visible")
            page.fill("#user-id", user)
            page.fill("#password", password)
            page.fill("#totp", pyotp.TOTP(secret).now())
            page.click("#sign-in-button")

            page.wait_for_function(ALL_ROWS_IN_STATE, arg=[len(record.services), "ready"], timeout=60_000)
            nodes = page.locator("#topology g.node")
            assert nodes.count() == len(record.services)
            assert page.locator('#topology g.node[data-state="ready"]').count() == len(record.services)
            # per city: its intermediate server and the hub, its CS and the prefecture server
            assert page.locator("#topology line.edge.network").count() == 2 * len(record.cities)
            assert "healthy" in page.inner_text("#nats")
            assert "waiting 0" in page.inner_text("#features")  # the intermediate servers' review queues
            page.screenshot(path=str(tmp_path / "ops_console_ready.png"), full_page=True)

            assert is_running(victim.pid, victim.started)
            os.kill(victim.pid, signal.SIGKILL)
            page.wait_for_function(ROW_IN_STATE, arg=[str(victim.principal), "down"], timeout=30_000)
            others = page.locator('#services tbody tr[data-state="ready"]').count()
            assert others == len(record.services) - 1
            page.screenshot(path=str(tmp_path / "ops_console_down.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "ops_console_ready.png").stat().st_size > 0
    assert (tmp_path / "ops_console_down.png").stat().st_size > 0
