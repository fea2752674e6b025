"""健康管理システム — health management.

The city's vaccination register (system 1 of the assessment, Ⅰ-2).

Manages routine vaccination information for minors and adults, queries other cities'
records through the intermediate server, and builds the copy of its records that the
intermediate server provides to others (flows [07]–[16]).
"""
