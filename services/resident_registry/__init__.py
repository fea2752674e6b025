"""住民記録システム — resident registry (simulated).

The existing resident registry (既存住基 / 住民記録システム), simulated.

The source of residents, their My Numbers and their changes (異動), which it publishes
for the address systems and the Juki-net CS (flows [01] and [10]).
"""
