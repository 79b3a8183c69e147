"""Every account's value figures as one PostgreSQL query: what ``clv.account_figures`` gives.

The daily insights step reads them here so that no account's figures pass through Python: at
1,000,000 accounts, building them as objects and sending them back took more than half the step.
The per-segment inputs (gross margin, churn rate, expected lifetime) are a few rows computed by
the same functions as the Python path (``ValueSettings.margin_for``, ``segment_churn_rates``) and
passed as arrays; the per-account arithmetic and the RFM and lifecycle rules are the SQL twins of
``clv.account_clv``, ``rfm.rfm_segment`` and ``lifecycle.lifecycle_segment``, and the tests
(``tests/insights/test_recompute_paths.py``) check that both paths store the same rows.

Each rounded figure is one division, done last and carried to at least 40 places before rounding
half up (``round`` on numeric): the exact value rounded, as the Python path gives it (CLV there is
carried to 80 digits). A division first, its rounding carried into a product, put a CLV that is
exactly on a half cent (365/90 x 0.7 x 9 years) a cent low.
"""

import datetime as dt

from insights.clv import expected_lifetime, segment_churn_rates
from insights.models import Lifecycle, RfmSegment, ValueSettings
from insights.purchases import HISTORY_CTES, WINDOW_OF_PURCHASES_CTES, window_params

# Columns named as ``recompute._FIGURE_FIELDS``, after ``account_id``.
FIGURES_SQL = f"""
WITH {HISTORY_CTES}, {WINDOW_OF_PURCHASES_CTES},
margins AS (
    SELECT * FROM unnest(%(margin_segments)s::text[], %(margins)s::numeric[]) AS m(segment, margin)
), churn AS (
    SELECT * FROM unnest(%(churn_segments)s::text[], %(churn_rates)s::numeric[], %(lifetimes)s::numeric[])
        AS c(segment, rate, lifetime)
), joined AS (
    SELECT a.id AS account_id,
           h.purchases, h.first_at, h.second_at, h.last_at, h.returned_at,
           w.frequency, w.monetary::numeric(1000, 40) AS monetary, w.r_score, w.f_score, w.m_score,
           COALESCE(m.margin, %(default_margin)s::numeric) AS gross_margin,
           c.rate AS churn_rate,
           COALESCE(c.lifetime, %(no_churn_lifetime)s::numeric) AS lifetime
    FROM accounts_account a
    LEFT JOIN moments h ON h.account_id = a.id
    LEFT JOIN scored w ON w.account_id = a.id
    LEFT JOIN margins m ON m.segment = a.segment
    LEFT JOIN churn c ON c.segment = a.segment
)
SELECT account_id,
       COALESCE(purchases, 0) AS purchases,
       first_at AS first_purchase_at,
       second_at AS second_purchase_at,
       last_at AS last_purchase_at,
       COALESCE(frequency, 0) AS window_purchases,
       COALESCE(monetary, 0) AS window_value,
       round(monetary / frequency, 2) AS average_order_value,
       COALESCE(round(frequency::numeric(1000, 40) * 365 / %(window_days)s, 4), 0) AS purchases_per_year,
       gross_margin,
       churn_rate,
       lifetime AS expected_lifetime_years,
       CASE WHEN frequency IS NOT NULL
            THEN round(monetary * 365 * gross_margin * lifetime / %(window_days)s, 2)
            WHEN purchases IS NOT NULL THEN 0 END AS clv,
       r_score, f_score, m_score,
       CASE WHEN frequency IS NULL THEN CASE WHEN purchases IS NOT NULL THEN %(rfm_lost)s ELSE '' END
            WHEN r_score >= 4 AND frequency = 1 THEN %(rfm_new)s
            WHEN r_score >= 4 AND f_score >= 4 AND m_score >= 4 THEN %(rfm_champions)s
            WHEN r_score <= 2 AND f_score >= 4 AND m_score >= 4 THEN %(rfm_cant_lose)s
            WHEN r_score <= 2 AND (f_score >= 3 OR m_score >= 3) THEN %(rfm_at_risk)s
            WHEN r_score = 2 THEN %(rfm_hibernating)s
            WHEN r_score = 1 THEN %(rfm_lost)s
            WHEN f_score >= 4 THEN %(rfm_loyal)s
            ELSE %(rfm_potential_loyalists)s END AS rfm_segment,
       CASE WHEN purchases IS NULL THEN ''
            WHEN %(as_of)s - last_at >= %(quiet)s THEN %(lifecycle_lapsed)s
            WHEN returned_at IS NOT NULL AND %(as_of)s - returned_at < %(quiet)s
                THEN %(lifecycle_reactivated)s
            WHEN purchases = 1 THEN %(lifecycle_new)s
            WHEN purchases = 2 THEN %(lifecycle_repeat)s
            ELSE %(lifecycle_regular)s END AS lifecycle
FROM joined
"""


def figures_params(*, as_of: dt.datetime, settings: ValueSettings) -> dict:
    """The parameters of ``FIGURES_SQL``: the settings, the segments' inputs and the labels."""
    churn = segment_churn_rates(as_of=as_of, max_lifetime_years=settings.max_lifetime_years)
    margins = settings.segment_margins or {}
    return {
        "names": list(settings.value_events),
        "quiet": dt.timedelta(days=settings.quiet_days),
        "window_days": settings.window_days,
        **window_params(as_of=as_of, window_days=settings.window_days),
        "margin_segments": list(margins),
        "margins": [settings.margin_for(segment) for segment in margins],
        "default_margin": settings.default_gross_margin,
        "churn_segments": list(churn),
        "churn_rates": [c.rate for c in churn.values()],
        "lifetimes": [c.lifetime_years for c in churn.values()],
        "no_churn_lifetime": expected_lifetime(None, settings.max_lifetime_years),
        **{f"rfm_{segment.name.lower()}": segment.value for segment in RfmSegment},
        **{f"lifecycle_{segment.name.lower()}": segment.value for segment in Lifecycle},
    }
