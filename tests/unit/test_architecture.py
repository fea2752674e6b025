"""The shape of the code: services never import one another; the kernel knows no service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.contracts import CITY_SERVICES, GLOBAL_SERVICES

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_every_service_has_the_same_shape():
    services = sorted(p for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
    assert {p.name for p in services} >= {*CITY_SERVICES, *GLOBAL_SERVICES}
    for service in services:
        for module in ("__init__.py", "app.py", "bus.py", "config.py"):
            assert (service / module).exists(), f"{service.name} lacks {module}"
        assert (service / "__init__.py").read_text().startswith('"""'), f"{service.name} says nothing of itself"
