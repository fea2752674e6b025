"""都道府県サーバ / 全国サーバ — the prefecture and national servers of Juki-net (simulated).

Outside the city's systems: one server for every city's community server (CS). It keeps
the identity information (本人確認情報) each city's CS forwards, keyed by city and resident
code; answers lookups across cities (non-residents, flow [04]) by My Number, resident code
or birth date; and answers the consistency check (整合性確認) by range digests.

It speaks HTTPS only, and only to peers holding a certificate of the local CA (mutual
authentication, M17). A peer's certificate names it: only a city's ``juki_cs`` may forward
or compare, and only for its own city; any ``juki_cs`` may look up.
"""
