"""MLflow: one client factory, model refs, aliases, tag keys, tracking, registration, lineage,
reproduction."""
