"""The ``kalliope-tel`` command line."""
