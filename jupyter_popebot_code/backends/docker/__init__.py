"""The single-engine backend: one container and one volume per workspace on a Docker engine."""
