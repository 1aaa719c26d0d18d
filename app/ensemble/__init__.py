"""The stacked ensemble (the course's week 8): members' answers combined in log space, out-of-fold,
with a conformal interval, shipped as a versioned bundle."""
