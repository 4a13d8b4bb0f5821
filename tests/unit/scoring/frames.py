"""Small frames for the comparison tests, written in hours."""

import numpy as np
import pandas as pd

H = 3600


def timeline(*changes):
    """(person, hour, level, rule ids) tuples as a timeline frame."""
    return pd.DataFrame(
        [(person, hour * H, level, tuple(rules)) for person, hour, level, rules in changes],
        columns=["person", "at", "level", "reasons"],
    )


def truth(*rows):
    """(person, infected hour, infectious from hour, infectious until hour) tuples, None for never."""
    return pd.DataFrame(
        [(person, *(np.nan if hour is None else hour * H for hour in hours)) for person, *hours in rows],
        columns=["person", "infected_at", "infectious_from", "infectious_until"],
    )
