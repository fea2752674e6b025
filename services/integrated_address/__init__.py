"""団体内統合宛名システム — integrated address.

The integrated address system (system 4 of the assessment, Ⅰ-2).

Assigns an integrated address number (統合宛名番号) to anyone who has none, stores address
information keyed by it and by My Number, and answers the intermediate server and the
entitled business systems (flow [03]).
"""
