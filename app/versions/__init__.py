"""Versioned artifacts (adapters, ensemble bundles, the next ones) on one follower: the desired state
every replica shares (desired.py), which version a policy prefers (policy.py), and following and
publishing that choice with lag reporting and retry rules (follower.py). Each kind supplies only how
to find, validate, load and activate its versions. Imports nothing above the runtime helpers."""
