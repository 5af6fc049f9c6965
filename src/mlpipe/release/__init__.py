"""Whether a model may serve: the infra check and its probe, the differential test, the promotion gate."""
