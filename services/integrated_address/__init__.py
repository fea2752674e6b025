"""団体内統合宛名システム — integrated address.

The integrated address system (system 4 of the assessment, Ⅰ-2), functions:

1. assigns an integrated address number (統合宛名番号) to anyone who has none, on request of
   the business systems entitled to My Numbers, once and only once (``assign``, flow [03]);
2. keeps address information keyed by that number and by My Number, current from the
   resident registry's changes (異動, flow [01], M30), the departed and deceased included
   (M31);
3. answers the intermediate server, which never asks by, nor receives, a My Number (M07,
   M24), with exactly the items it asks for;
4. answers the business systems by My Number or integrated address number (``lookup``).

Staff look people up at the counter through ``/addressees`` (roles in ``roles.py``).
"""
