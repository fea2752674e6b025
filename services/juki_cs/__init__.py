"""住基ネット CS — Juki-net community server.

The community server of the resident registry network (system 5 of the assessment, Ⅰ-2).

Keeps identity information (本人確認情報) current from the resident registry and forwards it
to the prefecture server, verifies identity from a My Number card, and searches by the four
basic items (flow [04]).
"""
