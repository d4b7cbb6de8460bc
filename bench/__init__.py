"""LeadLoop benchmarks: ``python -m bench NAME`` (``python -m bench --list`` lists them).

Each benchmark is one module in :mod:`bench.benchmarks`; see ``bench/README.md``.
"""
