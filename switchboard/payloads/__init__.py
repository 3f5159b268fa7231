"""Pure builders of vendor request bodies from canonical alerts (no HTTP here)."""
