"""A synthetic city with a known ground truth: who was where, who infected whom, what the
health system saw, published as contract-v1 events.

`run.simulate(config)` is the pure core: deterministic by seed, it yields blocks of
events in arrival order and ends with the ground truth. `output`, `publish` and
`plot` move its results to files, the broker and a picture.
"""
