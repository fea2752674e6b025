"""Both address systems fed by the real resident registry: a seeded population reaches
them through the registry's outbox and JetStream, and every resident ends up in both with
one integrated address number, the same on both sides."""

from __future__ import annotations

from sqlalchemy import select

from services.integrated_address.app import SPEC as INTEGRATED_SPEC
from services.integrated_address.config import Settings as IntegratedSettings
from services.integrated_address.models import Addressee
from services.resident_registry.app import SPEC as REGISTRY_SPEC
from services.resident_registry.config import Settings as RegistrySettings
from services.resident_registry.models import ResidentEntry
from services.resident_registry.seeding import seed
from services.welfare_address.app import SPEC as WELFARE_SPEC
from services.welfare_address.config import Settings as WelfareSettings
from services.welfare_address.models import WelfareAddressee
from tests.unit.test_integrated_address import CITY, running, service_settings, wait_for_inbox

PEOPLE = 150


def test_a_seeded_population_reaches_both_address_systems_with_one_number_each(stack_files, nats_secured, database_url):
    settings = {
        name: service_settings(cls, name, stack_files, nats_secured, database_url)
        for name, cls in (("resident_registry", RegistrySettings), ("integrated_address", IntegratedSettings), ("welfare_address", WelfareSettings))
    }
    with (
        running(REGISTRY_SPEC, settings["resident_registry"]) as [registry],
        running(INTEGRATED_SPEC, settings["integrated_address"]) as [integrated],
        running(WELFARE_SPEC, settings["welfare_address"]) as [welfare],
    ):
        report = seed(registry.app.state.context.db, CITY, PEOPLE, seed=7)
        assert wait_for_inbox(integrated.app.state.context.db, "integrated_address__changed", report.events, seconds=120) == report.events
        assert wait_for_inbox(welfare.app.state.context.db, "welfare_address__changed", report.events, seconds=120) == report.events
        with registry.app.state.context.db.session() as session:
            register = {r.my_number: r for r in session.scalars(select(ResidentEntry))}
        with integrated.app.state.context.db.session() as session:
            in_integrated = {r.my_number: r for r in session.scalars(select(Addressee))}
        with welfare.app.state.context.db.session() as session:
            in_welfare = {r.my_number: r for r in session.scalars(select(WelfareAddressee))}

    assert report.events == len(register) > 0
    assert set(in_integrated) == set(in_welfare) == set(register)
    for my_number, entry in register.items():
        mine, theirs = in_integrated[my_number], in_welfare[my_number]
        assert mine.integrated_address_number == theirs.integrated_address_number
        assert (mine.resident_code, mine.birth_date, mine.status) == (entry.resident_code, entry.birth_date, "resident")
        assert (theirs.resident_code, theirs.address, theirs.status) == (entry.resident_code, entry.address, "resident")
        assert mine.name == theirs.name and mine.name.replace("\u3000", "") == entry.family_name + entry.given_name
    assert len({r.integrated_address_number for r in in_integrated.values()}) == len(register)
    assert len({r.welfare_address_number for r in in_welfare.values()}) == len(register)
