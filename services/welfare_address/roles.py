"""Staff roles of the welfare address system and what each may do (M06).

A counter clerk (窓口担当) registers non-residents and looks people up without seeing My
Numbers; a welfare officer (福祉宛名担当) may also correct non-residents' items, search by
My Number and see one.
"""

READ = "addressee.read"
READ_MY_NUMBER = "addressee.read_my_number"
REGISTER = "addressee.register"
UPDATE = "addressee.update"

ROLES: dict[str, frozenset[str]] = {
    "counter_clerk": frozenset({READ, REGISTER}),
    "welfare_officer": frozenset({READ, READ_MY_NUMBER, REGISTER, UPDATE}),
}
