"""The model artifact: its file format (canonical skops, trusted types), manifest, and safe loading."""
