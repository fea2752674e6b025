"""Only the health management may ask the tax and welfare systems (flow [06], M15), on a real
nats-server configured as the stack configures it and the real service behind it.

Both walls are tried: an outsider's token carried over the health management's NATS login
reaches the service and is refused by the operation's allowlist (and logged); the
outsider's own login cannot even publish on the subject.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from renkei.testkit import make_bus
from services.tax_welfare.app import SPEC
from services.tax_welfare.models import LocalTaxRecord
from shared.contracts import REGISTRY
from shared.contracts.tax_welfare import PersonKey, StatusRequest
from shared.errors import Forbidden, Unavailable
from shared.ids import integrated_address_number
from shared.trust import Principal
from tests.security.test_bus_refusals import collect_errors, violations
from tests.unit.test_integrated_address import CITY, HEALTH, running
from tests.unit.test_tax_welfare import settings_for

OUTSIDERS = [
    Principal("welfare_address", CITY),
    Principal("intermediate_server", CITY),
    Principal("integrated_address", CITY),
    Principal("resident_registry", CITY),
    Principal("health_mgmt", "112216"),  # another city's health management
    Principal("ops_console"),
    Principal("provision_network"),
]
NUMBER = integrated_address_number(CITY, "000000042")
REQUEST = StatusRequest(fiscal_year=2024, people=[PersonKey(integrated_address_number=NUMBER, birth_date=date(1950, 4, 2))])


def ask(files, server, operation, caller: Principal, login: Principal):
    async def scenario():
        bus = make_bus(files.data_dir, files.directory, caller)
        await bus.connect(server.url, *files.login(login))
        try:
            return await bus.request(operation, CITY, REQUEST, timeout=2)
        except Exception as exc:
            return exc
        finally:
            await bus.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("name", ["local_tax_status", "public_assistance_status"])
def test_only_the_health_management_gets_an_answer(stack_files, nats_secured, database_url, name):
    operation = REGISTRY.operation("tax_welfare", name)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        with client.app.state.context.db.session() as session:
            session.add(LocalTaxRecord(integrated_address_number=NUMBER, fiscal_year=2024, birth_date=date(1950, 4, 2), status="taxed", origin="loaded"))
        answered = ask(stack_files, nats_secured, operation, HEALTH, HEALTH)
        refused = {str(o): ask(stack_files, nats_secured, operation, o, HEALTH) for o in OUTSIDERS}
        entries = client.app.state.context.oplog.entries(operation.key)
    assert answered.answers[0].integrated_address_number == NUMBER
    assert all(isinstance(problem, Forbidden) and "may not call" in problem.detail for problem in refused.values()), refused
    assert {e.actor for e in entries if e.outcome == "urn:renkei:problem:forbidden"} == set(refused)


@pytest.mark.parametrize("outsider", [o for o in OUTSIDERS if o.city == CITY] + [Principal("ops_console")], ids=str)
def test_an_outsiders_own_login_cannot_publish_the_question(stack_files, nats_secured, database_url, outsider):
    operation = REGISTRY.operation("tax_welfare", "local_tax_status")
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)):
        walled = ask(stack_files, nats_secured, operation, outsider, outsider)

        async def scenario():
            nc, errors = await collect_errors(stack_files, nats_secured, outsider)
            await nc.publish(operation.subject(CITY), b"{}")
            await nc.flush()
            await asyncio.sleep(0.2)
            await nc.close()
            return errors

        errors = asyncio.run(scenario())
    assert isinstance(walled, Unavailable)  # nobody heard it: NATS dropped it before the service
    assert violations(errors, "publish", operation.subject(CITY)) == 1, errors
