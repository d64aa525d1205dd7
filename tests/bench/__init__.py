"""``make bench``: the figures of issue 4 (and audit replay), measured on the local stack.

Run with ``python -m tests.bench``; writes ``out/bench.json`` and prints a table. Not part
of ``make test``: speed is reported as figures and ratios, never asserted.
"""
