"""docs/operations.md holds the settings table exactly as Settings makes it, and covers what operators need."""

from __future__ import annotations

from app.config import Settings
from tests.deploy import settings_table
from tests.deploy.tools import ROOT

DOC = ROOT / "docs" / "operations.md"


def test_settings_table_matches_the_code():
    text = DOC.read_text()
    assert settings_table.block() in text, "regenerate it: python -m tests.deploy.settings_table --write"


def test_every_setting_is_documented():
    table = settings_table.render()
    for name in Settings.model_fields:
        assert f"`PRICER_{name.upper()}`" in table


def test_covers_operations():
    text = DOC.read_text()
    assert "send activations to every replica" not in text  # one desired state in the store reaches them all
    for needle in (
        "docker compose up -d",
        "--profile train run --rm trainer",
        "/activate",
        "--scale api=",
        "PRICER_TENSOR_PARALLEL_SIZE",
        "accelerate",
        "traefik",
        "GET /v1/fleet",
        "generation",
        "?wait=true",
        "pricer_desired_state_lag",
        "docs/dashboard.png",
    ):
        assert needle in text, needle


def test_the_security_section_says_what_is_open_and_how_to_open_more():
    section = DOC.read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "The threat", "Open by default", "127.0.0.1", "/v1/fleet", "admin-key-required", "X-Forwarded-For",
        "PRICER_ADMIN_KEY", "PRICER_API_KEY", "PRICER_LB_BIND", "PRICER_LB_ADMIN_BIND", "PRICER_HOST",
    ):
        assert needle in section, needle
