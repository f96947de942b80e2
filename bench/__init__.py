"""Benchmarks of jupyter-popebot-code against its peers; run with `python -m bench`."""
