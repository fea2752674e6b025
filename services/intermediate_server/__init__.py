"""中間サーバー — intermediate server.

The intermediate server (system 3 of the assessment, Ⅰ-2; functions 1–10): symbol
management (符号 ↔ 統合宛名番号), queries (情報照会) and their decrypted answers, provisions
(情報提供) from the provision database (副本) with the review queue of no-auto-response
items, the permitted-query list and the answer keys (HPKE, ML-KEM-768 + X25519), staff
authentication and roles, system management, and the provision records (情報提供等記録).
One platform; each city is a separate tenant. It speaks to the business systems on the
bus and to the national hub over HTTPS with mutual TLS (a second listener, for the hub
alone). See docs/intermediate_server.md and docs/protocols/network.md.
"""
