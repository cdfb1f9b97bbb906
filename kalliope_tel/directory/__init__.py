"""The directory desk phones search: LDAP (OpenLDAP's slapd) and XML phonebooks."""
