"""Benchmarks: ingest speed, retrieval latency at scale, dev-set quality and local-model speed.

Run ``python -m bench`` (``make bench``); ratios against baselines measured in the same run are
what the README quotes, since absolute times on a shared machine are noisy.
"""
