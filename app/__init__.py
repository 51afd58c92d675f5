"""Diplomatic Timeline API."""
