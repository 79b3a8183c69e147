"""RFM segmentation: recency, frequency and monetary quintiles, and the named segment they make.

The scores come from ``purchases.window_purchases`` (one SQL statement over all accounts). The
named segment is the first rule that matches, in this order:

=====================  ==========================================================
new                    R ≥ 4 and exactly one purchase in the window
champions              R ≥ 4, F ≥ 4 and M ≥ 4
can't lose them        R ≤ 2, F ≥ 4 and M ≥ 4
at risk                R ≤ 2 and (F ≥ 3 or M ≥ 3)
hibernating            R = 2
lost                   R = 1, or purchases before the window but none in it
loyal                  F ≥ 4 (R is 3 or more here)
potential loyalists    everything else (R ≥ 3)
=====================  ==========================================================

An account that never bought has no segment.
"""

from insights.models import RfmSegment
from insights.purchases import WindowPurchases


def rfm_segment(window: WindowPurchases | None, *, bought_before: bool) -> str:
    """The named segment of one account's scores ("" for an account that never bought)."""
    if window is None:
        return RfmSegment.LOST if bought_before else ""
    r, f, m = window.r_score, window.f_score, window.m_score
    if r >= 4 and window.frequency == 1:
        return RfmSegment.NEW
    if r >= 4 and f >= 4 and m >= 4:
        return RfmSegment.CHAMPIONS
    if r <= 2 and f >= 4 and m >= 4:
        return RfmSegment.CANT_LOSE
    if r <= 2 and (f >= 3 or m >= 3):
        return RfmSegment.AT_RISK
    if r == 2:
        return RfmSegment.HIBERNATING
    if r == 1:
        return RfmSegment.LOST
    if f >= 4:
        return RfmSegment.LOYAL
    return RfmSegment.POTENTIAL_LOYALISTS
