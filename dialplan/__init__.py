"""Dialplan that calls kalliope-tel's handlers, and its generator."""
