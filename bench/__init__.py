"""Side-by-side benchmarks: this queue against the peers a user would otherwise pick.

Run them with ``python -m bench`` (``make bench``); ``python -m bench --help`` lists the
choices. Every benchmark starts its own redis-server on a free port, runs our side and
each peer's side in the same run, and reports medians of several rounds and ratios.
"""
