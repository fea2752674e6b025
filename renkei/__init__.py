"""The ``renkei`` command: the local stack, the data tools, the benchmarks and the ledger checks."""
