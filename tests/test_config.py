"""app/config.py: the settings sections. Every field is declared in exactly one section, Settings is
all of them, and the flat PRICER_* names are unchanged (deployments set them)."""

from __future__ import annotations

from app.config import SECTIONS, EngineSettings, Settings


def test_every_setting_is_in_exactly_one_section():
    declared = [name for section in SECTIONS for name in section.model_fields]
    assert len(declared) == len(set(declared))
    assert set(declared) == set(Settings.model_fields)


def test_the_flat_names_still_configure_every_section(monkeypatch):
    monkeypatch.setenv("PRICER_PORT", "9001")
    monkeypatch.setenv("PRICER_MAX_MODEL_LEN", "256")
    monkeypatch.setenv("PRICER_BATCH_SIZE", "8")
    settings = Settings()
    assert (settings.port, settings.max_model_len, settings.batch_size) == (9001, 256, 8)
    assert EngineSettings().max_model_len == 256  # a section alone reads the same variable
