"""Extensions, their SIP accounts and outbound classes: the core rows every
feature builds on (a hotel room is an extension with hotel data, a meeting
room may belong to one, a fax instance dials out through a class)."""
