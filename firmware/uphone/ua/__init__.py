# The user agent's session kinds, one module each, as functions of the phone (uphone.phone.Phone, the core):
# see docs/NOTES.md "Layout". Nothing is imported here: the phone loads what it uses.
