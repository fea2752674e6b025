"""住基ネット CS — Juki-net community server.

The community server of the resident registry network (system 5 of the assessment, Ⅰ-2).
Of its functions it carries:

1. identity information (本人確認情報) kept current from the registry's changes and
   forwarded to the prefecture server (``identity.py``, ``forwarding.py``; M30, M31);
2. identity verification from a My Number card at the counter (``card.py``; M01);
4. search by the four basic items (``matching.py``, ``lookup.py``; M03);
5. lookups of other cities' people at the prefecture server by resident code, My Number or
   the four items (``lookup.py``; flow [04]);
6. the consistency check of identity information with the prefecture server
   (``consistency.py``).

The link to the prefecture server is HTTPS with mutual TLS (``prefecture.py``; M17).
Special move-in (3), card-mailing notices (7) and the card management system (8) are not
modelled. docs/juki.md states what holds and the APIs.
"""
