"""Moved to the app.store package (app.store.base). This alias stays only until app/api/lifecycle.py
imports app.store.base itself (its owner was told); nothing else may import it."""

from app.store.base import *  # noqa: F401,F403
from app.store.base import resolve_base  # noqa: F401
