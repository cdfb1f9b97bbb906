"""The root of kalliope-tel's own errors: the CLI prints them as one line."""


class KalliopeError(Exception):
    """An error whose message is meant for the operator as it is."""
