"""Backup and restore: the whole dataset as one versioned JSON archive."""
