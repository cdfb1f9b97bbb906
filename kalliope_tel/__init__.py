"""kalliope-tel: KalliopePBX add-on modules for an Asterisk PBX."""

__version__ = "0.1.0"
