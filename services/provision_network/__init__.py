"""情報提供ネットワークシステム — national hub (simulated).

The national information provision network, simulated (outside the city's systems). It
issues symbols (符号, a keyed one-way function per institution) and alone can translate
them, checks the permitted-query list, issues signed provision permits (情報提供許可証)
with the route to the provider, relays queries and carries the encrypted answers it cannot
read, and keeps a record of every permit issued or refused. One hub serves every city,
over HTTPS with mutual TLS only. See docs/protocols/network.md.
"""
