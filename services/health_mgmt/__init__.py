"""健康管理システム — health management.

The city's vaccination register (system 1 of the assessment, Ⅰ-2).

- the register (予防接種台帳): people (接種対象者) by integrated address number, with their
  resident code and voucher number (接種券番号), and a record per dose of every type of 別添2,
  checked by the catalogue and judged by the routine schedule (``register``, ``catalogue``,
  ``schedule``); enrolment asks the integrated address system (flow [03], ``addressing``);
- the monthly clinic reports (原票, flow [12]) and the commission fees owed to clinics
  (``clinic_report``, ``clinics``);
- the reminder batch (勧奨通知, flow [07]) and the certificates of vaccination (接種済証,
  flow [09]) as PDF (``reminders``, ``certificates``, ``documents``);
- the fee determination (実費徴収, flow [06]): local-tax and public-assistance information
  asked of the city's tax and welfare systems over the bus (``fee_inquiry``) or imported
  from files, matched with the register (突合) and decided (``fees``);
- statistics that identify nobody (M35, ``statistics``).
Still to come: queries to other cities through the intermediate server, and the copy of
its records the intermediate server provides (flows [14]–[16]).
"""
