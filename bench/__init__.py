"""Benchmarks: scripts that measure whyrec and write JSON stamped with the commit and config.

Run each as a module from the repository root, e.g. ``python -m bench.compare ...``; the shared
pieces (the stamp, writing results) are in :mod:`bench.common`.
"""
