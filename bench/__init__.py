"""Benchmarks of the streaming service against a minimal "floor" app (run with `make bench`)."""
