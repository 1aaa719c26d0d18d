"""Curation of raw Amazon metadata into priced items: reading, rules, balanced sampling, splits, charts."""
