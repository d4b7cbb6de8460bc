"""Contacts' cards on the surfaces' home pages (registered from AppConfig.ready)."""
