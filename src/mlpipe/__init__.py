"""mlpipe: reproducible, orchestrated ML pipeline for tabular data."""
