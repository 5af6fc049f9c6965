"""Watching a served model: Evidently drift reports and the monitor's decisions."""
