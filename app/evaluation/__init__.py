"""Scoring any estimator the way the course's Tester does: metrics, per-item report, charts, leaderboard."""

from app.evaluation.metrics import Score, ScoringError, band, score

__all__ = ["Score", "ScoringError", "band", "score"]
