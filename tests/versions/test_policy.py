"""The policies over any kind's rows: latest by version name, best by score with unscored last, manual
never by itself; under best an unscored version replaces nothing unless the kind says any beats none."""

from __future__ import annotations

from app.versions.policy import Standing, ranked, should_replace


def test_ranking():
    rows = [Standing("20260101", 60.0), Standing("20260103"), Standing("20260102", 50.0), Standing("20260104", 50.0)]
    versions = lambda rows: [s.version for s in rows]  # noqa: E731
    assert versions(ranked(rows, "latest", lambda s: s)) == ["20260104", "20260103", "20260102", "20260101"]
    assert versions(ranked(rows, "manual", lambda s: s)) == ["20260104", "20260103", "20260102", "20260101"]
    assert versions(ranked(rows, "best", lambda s: s)) == ["20260104", "20260102", "20260101", "20260103"]


def test_replacement():
    old, new, unscored = Standing("1", 50.0, "a"), Standing("2", 60.0, "a"), Standing("3", None, "a")
    assert should_replace("latest", new, old) and not should_replace("latest", old, new)
    assert should_replace("latest", old, Standing("9", 1.0, "b"))  # another name: the tracked name changed
    assert should_replace("best", old, new) and not should_replace("best", new, old)
    assert not should_replace("best", unscored, old) and should_replace("best", old, unscored)
    assert not should_replace("manual", new, None)
    assert should_replace("latest", unscored, None) and should_replace("best", old, None)
    assert not should_replace("best", unscored, None)
    assert should_replace("best", unscored, None, unscored_over_nothing=True)
