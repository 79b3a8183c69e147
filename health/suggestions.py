"""Suggested weights: learn from history how much each measure predicts the outcome (issue 9).

A logistic regression of the outcome on the measures' points (0-1) as of an earlier date, fitted
on that backtest's accounts, is evaluated on a later date whose outcome window does not overlap
the first (``fit_as_of + horizon <= eval_as_of``), so the AUC shown is out of time. Since a score
is Σ weight * points, the coefficients are weights: measures whose coefficient is not positive
(no help, or pointing the wrong way) are left out, the rest scaled to sum 100. The result is a new
DRAFT made with ``create_scorecard`` (validated and audited like any other), never published.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import Account
from health.backtest import (
    BacktestRequest,
    BacktestResult,
    accounts_for_scorecard,
    as_of_moment,
    compare_backtests,
    population,
    validate_backtest,
)
from health.models import Scorecard
from health.scorecards import create_scorecard, scorecard_config
from health.scoring import compute_scores, rules_of

MIN_ACCOUNTS = 10  # per class: fewer and the fit says nothing


@dataclass(frozen=True)
class Suggestion:
    scorecard: Scorecard  # the new draft
    base: Scorecard
    coefficients: dict[str, float]  # by measure key, on points 0-1, oriented so that > 0 helps
    dropped: list[str]  # measures left out (coefficient not positive)
    fit_accounts: int
    fit_auc: float | None  # the suggestion on the fit date (in sample)
    base_result: BacktestResult  # the base scorecard on the evaluation date
    suggested_result: BacktestResult  # the suggestion on the evaluation date

    def as_json(self) -> dict[str, Any]:
        return {
            "scorecard": scorecard_config(self.scorecard),
            "base": self.base.pk,
            "coefficients": self.coefficients,
            "dropped": self.dropped,
            "fit": {"accounts": self.fit_accounts, "auc": self.fit_auc},
            "auc_base": self.base_result.auc,
            "auc_suggested": self.suggested_result.auc,
            "evaluation": {"base": self.base_result.as_json(), "suggested": self.suggested_result.as_json()},
        }


def validate_suggestion(
    data: Any, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date, BacktestRequest]:
    """``fit_as_of``, ``eval_as_of`` and the backtest fields; a ValidationError names each bad field."""
    data = data if isinstance(data, dict) else {}
    errors: dict[str, list[str]] = {}
    request = None
    try:
        request = validate_backtest({**data, "as_of": data.get("fit_as_of")})
    except ValidationError as error:
        errors = {("fit_as_of" if k == "as_of" else k): v for k, v in error.message_dict.items()}
    try:
        eval_as_of = dt.date.fromisoformat(str(data.get("eval_as_of")))
    except ValueError:
        errors["eval_as_of"] = ["must be a date, YYYY-MM-DD"]
    if not errors and today is not None and eval_as_of + dt.timedelta(days=request.horizon_days) > today:
        errors["eval_as_of"] = [
            f"the outcome window must have ended: it runs {request.horizon_days} days after"
        ]
    if errors:
        raise ValidationError(errors)
    return request.as_of, eval_as_of, request


def suggest_weights(
    *,
    actor,
    scorecard: Scorecard,
    fit_as_of: dt.date,
    eval_as_of: dt.date,
    outcome: Any,
    horizon_days: int | None,
    now: dt.datetime,
    accounts: QuerySet[Account] | None = None,
) -> Suggestion:
    """Fit weights for the scorecard's measures on ``fit_as_of``, save them as a draft, evaluate both."""
    from sklearn.linear_model import LogisticRegression  # heavy: imported only when fitting
    from sklearn.metrics import roc_auc_score

    request = validate_backtest(
        {"as_of": fit_as_of, "outcome": _outcome_json(outcome), "horizon_days": horizon_days}
    )
    if fit_as_of + dt.timedelta(days=request.horizon_days) > eval_as_of:
        raise ValidationError(
            {
                "eval_as_of": [
                    f"must be on or after the fit date plus the horizon ({request.horizon_days} days)"
                ]
            }
        )
    scope = accounts_for_scorecard(scorecard, Account.objects.all() if accounts is None else accounts)
    pop = population(
        accounts=scope, as_of=fit_as_of, outcome=request.outcome, horizon_days=request.horizon_days
    )
    rules = rules_of(scorecard)
    scored = compute_scores(
        as_of=as_of_moment(fit_as_of), scope=scope, assigned=dict.fromkeys(pop.outcomes, scorecard)
    )
    rows, labels = [], []
    for pk, positive in pop.outcomes.items():
        points = {c.measure: c.points for c in scored[pk].components}
        if all(p is None for p in points.values()):
            continue
        rows.append([points[r.key] for r in rules])
        labels.append(int(positive != request.outcome.bad))  # 1: the good outcome
    goods = sum(labels)
    if min(goods, len(labels) - goods) < MIN_ACCOUNTS:
        raise ValidationError(
            {
                "fit_as_of": [
                    f"needs at least {MIN_ACCOUNTS} accounts with and without the outcome on this date"
                ]
            }
        )
    means = [
        sum(float(r[i]) for r in rows if r[i] is not None) / max(1, sum(1 for r in rows if r[i] is not None))
        for i in range(len(rules))
    ]
    matrix = [
        [float(v) / 100 if v is not None else means[i] / 100 for i, v in enumerate(row)] for row in rows
    ]
    model = LogisticRegression(max_iter=1000).fit(matrix, labels)
    coefficients = {rule.key: round(float(c), 4) for rule, c in zip(rules, model.coef_[0], strict=True)}
    kept = {key: c for key, c in coefficients.items() if c > 0}
    if not kept:
        raise ValidationError(
            {"outcome": ["no measure of this scorecard predicts the outcome on the fit date"]}
        )
    total = sum(kept.values())
    config = scorecard_config(scorecard)
    measures = []
    for item in config["measures"]:
        if item["key"] in kept:
            weight = Decimal(str(100 * kept[item["key"]] / total)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            measures.append({**item, "weight": float(max(weight, Decimal("0.01")))})
    draft = create_scorecard(
        actor=actor,
        data={
            "name": f"{scorecard.name} (suggested weights)"[:255],
            "segment": config["segment"],
            "red_below": config["red_below"],
            "green_from": config["green_from"],
            "stale_after_days": config["stale_after_days"],
            "measures": measures,
        },
        now=now,
        derived_from=scorecard,
    )
    draft = Scorecard.objects.prefetch_related("measures").get(pk=draft.pk)
    base_result, suggested_result = compare_backtests(
        scorecard=scorecard,
        other=draft,
        as_of=eval_as_of,
        outcome=request.outcome,
        horizon_days=request.horizon_days,
        accounts=accounts,
    )
    fit_auc = roc_auc_score(labels, model.decision_function(matrix))
    return Suggestion(
        scorecard=draft,
        base=scorecard,
        coefficients=coefficients,
        dropped=[key for key in coefficients if key not in kept],
        fit_accounts=len(rows),
        fit_auc=round(float(fit_auc), 4),
        base_result=base_result,
        suggested_result=suggested_result,
    )


def _outcome_json(outcome: Any) -> Any:
    return outcome.as_json() if hasattr(outcome, "as_json") else outcome
