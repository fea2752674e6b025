"""福祉宛名システム — welfare address.

The welfare address system (system 2 of the assessment, Ⅰ-2).

Registers, queries and updates address information, including that of non-residents
(住登外宛名), for the business systems that are entitled to it (flow [02]).
"""
