"""The course's Tester formulas, pinned on small cases computed by hand."""

from __future__ import annotations

import math

import pytest

from app.evaluation import ScoringError, band, score


def test_hand_computed_case_with_a_zero_guess_and_a_price_under_a_dollar():
    truths = [100.0, 50.0, 0.5, 300.0]
    guesses = [130.0, 0.0, 2.0, 150.0]
    s = score(truths, guesses)
    # errors 30, 50, 1.5, 150
    assert s.mean_error == pytest.approx((30 + 50 + 1.5 + 150) / 4) == pytest.approx(57.875)
    # log errors: ln(101/131), ln(51/1), ln(1.5/3), ln(301/151)
    by_hand = math.sqrt(
        (math.log(101 / 131) ** 2 + math.log(51) ** 2 + math.log(0.5) ** 2 + math.log(301 / 151) ** 2) / 4
    )
    assert s.rmsle == pytest.approx(by_hand)
    assert s.rmsle == pytest.approx(2.02998, abs=1e-5)
    # green: 30 < 40; orange: 50 >= 40 but < 80; green: 1.5 < 40 although 300% off; red: 150, 50%
    assert (s.green, s.orange, s.red) == (2, 1, 1)
    assert s.hit_rate == 0.5
    assert s.n == 4


@pytest.mark.parametrize(
    ("truth", "guess", "colour"),
    [
        (100, 139.99, "green"),  # error just under $40
        (100, 140, "orange"),  # error exactly $40, 40%: not a hit
        (500, 420, "green"),  # $80 off but 16%
        (500, 401, "green"),  # 19.8%
        (500, 400, "orange"),  # exactly 20%: not a hit, but < 40%
        (500, 301, "orange"),  # $199, 39.8%
        (500, 300, "red"),  # $200, exactly 40%
        (50, 129.99, "orange"),  # $79.99
        (50, 130, "red"),  # $80, 160%
        (0.5, 0, "green"),
    ],
)
def test_bands_follow_the_course(truth, guess, colour):
    assert band(truth, guess) == colour


def test_perfect_guesses_score_zero():
    s = score([1.0, 20.0, 999.0], [1.0, 20.0, 999.0])
    assert (s.mean_error, s.rmsle, s.hit_rate) == (0.0, 0.0, 1.0)


def test_title_matches_the_course_chart_title():
    s = score([100.0, 50.0, 0.5, 300.0], [130.0, 0.0, 2.0, 150.0])
    assert s.title("Tester") == "Tester Error=$57.88 RMSLE=2.03 Hits=50.0%"


def test_constant_guess_on_known_prices():
    truths = [10.0, 20.0, 300.0]
    s = score(truths, [110.0] * 3)
    assert s.mean_error == pytest.approx((100 + 90 + 190) / 3)
    assert s.hit_rate == 0.0


@pytest.mark.parametrize(
    ("truths", "guesses", "message"),
    [
        ([], [], "no items"),
        ([1.0], [1.0, 2.0], "1 truths but 2 guesses"),
        ([1.0], [-1.0], "guess must be"),
        ([1.0], [math.nan], "guess must be"),
        ([0.0], [1.0], "true price"),
        ([math.inf], [1.0], "true price"),
    ],
)
def test_unscoreable_input_is_refused_clearly(truths, guesses, message):
    with pytest.raises(ScoringError, match=message):
        score(truths, guesses)
