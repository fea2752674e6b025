"""情報提供ネットワークシステム — national hub (simulated).

The national information provision network, simulated (outside the city's systems).

Issues symbols (符号), checks the permitted-query list, issues provision permits
(情報提供許可証) with the route to the provider, and carries encrypted messages it cannot
read. One hub serves every city.
"""
