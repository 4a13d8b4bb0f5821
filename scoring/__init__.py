"""The functional core: events, rule sets, person state, presence, exposures and levels.

Pure and deterministic: nothing in this package reads a clock, the environment or
the network. Times are explicit event times (integer seconds since the Unix epoch).
"""
