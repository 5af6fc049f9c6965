"""Data in: sources (adapters), frames and files, validation, the landing zone, DVC snapshots of data/."""
