"""Billing: pricing calls with cost profiles (the KalliopePBX debit service)."""
