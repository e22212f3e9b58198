"""Shared machinery for all extractors: landing, state, dead letters, HTTP, settings."""
