"""Canonical messages: entities, events, commands and the envelope."""
