"""福祉宛名システム — welfare address.

The welfare address system (system 2 of the assessment, Ⅰ-2): registers, queries and
updates address information, residents' and non-residents' (住登外宛名) alike, each person
under a welfare address number (福祉宛名番号) of their own.

- Residents are kept current from the resident registry's changes (異動, M30, M31).
- Non-residents are registered by the health management system (``register_non_resident``)
  or at the counter; whoever has a My Number is given an integrated address number by the
  integrated address system first (``assign``, flows [02], [03]).
- The health management system looks people up by My Number, integrated or welfare address
  number and gets exactly the items it asks for (``lookup``).

Staff register, look up and correct through ``/non-residents`` and ``/addressees``
(roles in ``roles.py``).
"""
