"""TCV, ACV and ARR contribution, with the numbers of the design brief."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import (
    acv,
    add,
    annualize,
    arr_contribution,
    convert,
    money_sum,
    quantize_money,
    tcv,
)
from models.policy import SubYearPolicy
from models.ratios import ratio

D = Decimal


@pytest.mark.parametrize(
    ("recurring", "term_months", "fees", "include_fees", "expected"),
    [
        # design brief: 6 months for 4,000 -> ACV 8,000 (annualized)
        (D(4000), 6, D(0), False, D(8000)),
        # design brief: 3 years, 8,000 a year, plus a 1,500 set-up fee
        (D(24000), 36, D(1500), False, D(8000)),
        (D(24000), 36, D(1500), True, D(8500)),
        (D(12000), 12, D(0), False, D(12000)),
        (D(12000), 12, D(600), True, D(12600)),
        (D(1000), 1, D(0), False, D(12000)),
        (D(30000), 24, D(0), False, D(15000)),
        (D(4000), 6, D(500), True, D(9000)),
        (D(0), 12, D(100), False, D(0)),
        (D(1000), 7, D(0), False, D("1714.285714")),
        (D(100), 9, D(0), False, D("133.333333")),
        (D(1), 1200, D(0), False, D("0.010000")),
    ],
)
def test_acv(
    recurring: Decimal, term_months: int, fees: Decimal, include_fees: bool, expected: Decimal
) -> None:
    assert acv(recurring, term_months, fees, include_one_time_fees=include_fees) == expected


@pytest.mark.parametrize(
    ("recurring", "term_months", "fees", "include_fees", "sub_year", "expected"),
    [
        (D(4000), 6, D(0), False, "annualize", D(8000)),
        (D(4000), 6, D(0), False, "cap_at_tcv", D(4000)),
        (D(4000), 6, D(500), True, "cap_at_tcv", D(4500)),
        (D(4000), 6, D(500), False, "cap_at_tcv", D(4000)),
        (D(1000), 1, D(0), False, "cap_at_tcv", D(1000)),
        (D(11000), 11, D(0), False, "cap_at_tcv", D(11000)),
        # a year or more: the cap never applies
        (D(12000), 12, D(0), False, "cap_at_tcv", D(12000)),
        (D(30000), 24, D(0), False, "cap_at_tcv", D(15000)),
        (D(24000), 36, D(1500), True, "cap_at_tcv", D(8500)),
    ],
)
def test_sub_year_policy(
    recurring: Decimal,
    term_months: int,
    fees: Decimal,
    include_fees: bool,
    sub_year: SubYearPolicy,
    expected: Decimal,
) -> None:
    value = acv(recurring, term_months, fees, include_one_time_fees=include_fees, sub_year=sub_year)
    assert value == expected


@pytest.mark.parametrize(
    ("recurring", "fees", "expected"),
    [
        (D(24000), D(1500), D(25500)),
        (D(4000), D(0), D(4000)),
        (D(0), D(250), D(250)),
        (D("0.1"), D("0.2"), D("0.3")),
    ],
)
def test_tcv_is_recurring_plus_fees(recurring: Decimal, fees: Decimal, expected: Decimal) -> None:
    assert tcv(recurring, fees) == expected


@pytest.mark.parametrize(
    ("recurring", "term_months", "expected"),
    [(D(24000), 36, D(8000)), (D(4000), 6, D(8000)), (D(12000), 12, D(12000)), (D(0), 5, D(0))],
)
def test_arr_contribution(recurring: Decimal, term_months: int, expected: Decimal) -> None:
    assert arr_contribution(recurring, term_months) == expected


def test_arr_never_counts_fees_even_when_acv_does() -> None:
    assert acv(D(24000), 36, D(1500), include_one_time_fees=True) == D(8500)
    assert arr_contribution(D(24000), 36) == D(8000)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (D("0.0000005"), D("0.000000")),
        (D("0.0000015"), D("0.000002")),
        (D("0.0000025"), D("0.000002")),
        (D("2.5000004"), D("2.500000")),
        (D("1E+3"), D("1000.000000")),
        (D(7), D("7.000000")),
    ],
)
def test_quantize_money_is_half_even_at_six_places(amount: Decimal, expected: Decimal) -> None:
    quantized = quantize_money(amount)
    assert quantized == expected
    assert quantized.as_tuple().exponent == -6


@pytest.mark.parametrize(
    "result",
    [
        tcv(D("0.1"), D("0.2")),
        acv(D(4000), 6),
        annualize(D(1000), 7),
        arr_contribution(D(1), 3),
        convert(D(100), D("1.1")),
    ],
)
def test_every_money_result_has_the_fixed_scale(result: Decimal) -> None:
    assert result.as_tuple().exponent == -6


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (D(100), D("1.1"), D(110)),
        (D("10.01"), D("0.5"), D("5.005")),
        (D(1), D("0.33333333"), D("0.333333")),
        (D(250), D(1), D(250)),
    ],
)
def test_convert(amount: Decimal, rate: Decimal, expected: Decimal) -> None:
    assert convert(amount, rate) == expected


money = st.decimals(min_value=0, max_value=10**12, places=6)
terms = st.integers(min_value=1, max_value=120)


@given(a=money, b=money, term_months=st.sampled_from([1, 2, 3, 4, 6, 12]))
def test_acv_of_a_sum_is_the_sum_of_acvs_when_exact(
    a: Decimal, b: Decimal, term_months: int
) -> None:
    assert acv(a + b, term_months) == acv(a, term_months) + acv(b, term_months)


@given(a=money, b=money, term_months=terms)
def test_acv_of_a_sum_is_within_one_rounding_step(a: Decimal, b: Decimal, term_months: int) -> None:
    difference = acv(a + b, term_months) - (acv(a, term_months) + acv(b, term_months))
    assert abs(difference) <= D("0.000001")


@given(recurring=money, fees=money, term_months=terms)
def test_acv_properties(recurring: Decimal, fees: Decimal, term_months: int) -> None:
    plain = acv(recurring, term_months, fees)
    with_fees = acv(recurring, term_months, fees, include_one_time_fees=True)
    capped = acv(recurring, term_months, fees, sub_year="cap_at_tcv")
    assert plain == arr_contribution(recurring, term_months)
    assert with_fees == annualize(recurring + fees, term_months)
    assert with_fees >= plain
    if term_months >= 12:
        assert capped == plain
        assert plain <= tcv(recurring, fees)
    else:
        assert capped == min(plain, quantize_money(recurring))
        assert capped <= tcv(recurring, fees)


@given(amounts=st.lists(money, min_size=1, max_size=30))
def test_quantized_sums_do_not_depend_on_order(amounts: list[Decimal]) -> None:
    quantized = [quantize_money(a) for a in amounts]
    assert sum(quantized, D(0)) == sum(reversed(quantized), D(0))
    assert sum(quantized, D(0)) == sum(sorted(quantized), D(0))


# -- at the contract's bounds: exact, and never InvalidOperation ---------------------------

TOP = Decimal("1000000000000")  # models.limits.MAX_MONEY
TOP_CENTS = Decimal("999999999999.999999")


def test_values_at_the_bounds_are_exact() -> None:
    assert acv(TOP, 1) == Decimal("12000000000000.000000")
    assert acv(TOP_CENTS, 1, TOP, include_one_time_fees=True) == Decimal("23999999999999.999988")
    assert arr_contribution(TOP_CENTS, 7) == Decimal("1714285714285.714284")
    assert tcv(TOP, TOP) == Decimal("2000000000000.000000")
    assert convert(TOP_CENTS, Decimal("1.2675")) == Decimal("1267499999999.999999")
    assert convert(TOP_CENTS, Decimal("123456789.123456789")) == Decimal(
        "123456789123456788876.543211"
    )


def test_sums_of_a_million_values_at_the_bounds_are_exact() -> None:
    one = acv(TOP_CENTS, 1)
    total = money_sum([one] * 1_000_000)
    assert total == Decimal("11999999999999999988.000000")
    huge = money_sum([total] * 1_000_000)
    assert add(huge, Decimal("0.000001")) == Decimal("11999999999999999988000000.000001")
    # the thread's 28 digits would have rounded the last places away
    assert huge + Decimal("0.000001") != Decimal("11999999999999999988000000.000001")


def test_a_quotient_of_sums_at_the_bounds_fits() -> None:
    numerator = money_sum([acv(TOP, 1)] * 1_000_000)
    assert ratio(numerator, Decimal("0.000001")) == Decimal("12000000000000000000000000.000000")
    with pytest.raises(InvalidOperation):  # what 28 digits would do
        (numerator / Decimal("0.000001")).quantize(Decimal("0.000001"))
    assert ratio(Decimal(1), Decimal(3)) == Decimal("0.333333")
