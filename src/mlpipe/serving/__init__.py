"""The REST service: app and routes, request rules, the prediction log, Prometheus metrics."""
