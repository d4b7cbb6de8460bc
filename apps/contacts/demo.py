"""Contacts' part of the demo world (registered with apps.core.demo.register_demo)."""
