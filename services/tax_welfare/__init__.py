"""庁内業務システム (税務・福祉) — the city's tax and welfare business systems (simulated).

Outside the assessment's systems and simulated here, as the resident registry is: the local
tax system (住民税: 課税 / 非課税 per person and fiscal year) and the public-assistance system
(生活保護: who receives it in a fiscal year), the sources of flow [06] (other business
systems → tax and income information), from which the health management decides who pays
the copayment of B類 vaccinations (実費徴収).

- ``taxpayers``: who the systems know (課税台帳・保護台帳の宛名), from the resident feed
  (birth date, household, since when a resident) and from the integrated address system's
  ``number_assigned`` (the integrated address number), joined by resident code; no My
  Number is kept.
- ``assessment``: the simulated assessments, deterministic: the same person and fiscal
  year always get the same status, whatever the order the events came in.
- ``records``: the records per person and fiscal year, seeded by ``assessment`` or loaded
  from a file in the health management's import format (``統合宛名番号,生年月日,区分``),
  and the answers to ``tax_welfare.local_tax_status`` and ``public_assistance_status``:
  a status only for a record whose number and birth date both agree.
- ``api``: a staff terminal that reads one person's records (M06, M08).
"""
