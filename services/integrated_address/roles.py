"""Staff roles of the integrated address system and what each may do (M06).

A counter clerk (窓口担当) looks people up by integrated address number and sees their
address items; only a number officer (番号担当) may search by My Number or see one.
"""

READ = "addressee.read"
READ_MY_NUMBER = "addressee.read_my_number"

ROLES: dict[str, frozenset[str]] = {
    "counter_clerk": frozenset({READ}),
    "number_officer": frozenset({READ, READ_MY_NUMBER}),
}
