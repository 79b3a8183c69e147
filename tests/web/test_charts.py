"""The server-side SVG charts draw what the numbers say."""

import re

from web import charts


def test_the_funnel_scales_bars_to_the_largest_stage_and_outlines_empty_ones():
    svg = charts.funnel([("Onboarding", 10), ("Adoption", 5), ("Renewal", 0)])

    widths = [float(w) for w in re.findall(r'class="funnel-bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths == [336.0, 168.0]  # 60% of 560 for the largest, half of it for half the accounts
    assert svg.count('class="funnel-empty"') == 1
    assert 'Renewal<tspan class="value"> none</tspan>' in svg
    assert 'Onboarding<tspan class="value"> 10</tspan>' in svg


def test_a_funnel_with_no_accounts_at_all_draws_only_outlines():
    svg = charts.funnel([("Onboarding", 0), ("Adoption", 0)])

    assert 'class="funnel-bar"' not in svg
    assert svg.count('class="funnel-empty"') == 2
