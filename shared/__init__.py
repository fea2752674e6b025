"""The kernel every Renkei service stands on.

config, bus, auth, db, ledger, crypto, ids, contracts: what is here is shared by all
services, and nothing here knows any one service (an import-linter contract holds it).
"""
