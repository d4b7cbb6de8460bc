"""Writes for contacts, one module per capability (see each module's docstring)."""
