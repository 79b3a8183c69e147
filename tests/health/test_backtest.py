"""Backtests: scores as of a past date against what happened after (issue 9), worked out by hand.

The scorecard (``linear_logins``): logins in the 7 days before T, 0 → 0 points, 10 → 100.
The backtest date is 2026-03-10, so T is 2026-03-11 00:00 UTC and the logins that count are
those from 2026-03-04 00:00 to 2026-03-10 23:59.
"""

import datetime as dt
from io import StringIO

import pytest
from django.core.exceptions import ValidationError

from accounts.changes import update_account
from accounts.models import Account
from health.backtest import backtest, compare_backtests, rank_auc, validate_backtest
from tests.factories import AccountFactory
from tests.health.conftest import events, measure, scorecard

AS_OF = dt.date(2026, 3, 10)


def logins(account: Account, n: int, *, day: str = "2026-03-09 10:00") -> None:
    if n:
        events(account, *[("login", day, None, None)] * n)


def account_with(n_logins: int, **fields) -> Account:
    account = AccountFactory(**fields)
    logins(account, n_logins)
    return account


# --- AUC --------------------------------------------------------------------------------------


def test_rank_auc_of_separating_reversed_and_tied_scores():
    assert rank_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert rank_auc([1, 2, 3, 4], [True, True, False, False]) == 0.0
    assert rank_auc([5, 5, 5, 5], [True, False, True, False]) == 0.5
    # 1 positive at 2, negatives at 1, 2, 3: beats one, ties one, loses one → (1 + 0.5) / 3.
    assert rank_auc([1, 2, 2, 3], [False, True, False, False]) == pytest.approx(0.5)
    assert rank_auc([1, 2], [True, True]) is None


# --- churned ----------------------------------------------------------------------------------


def test_scores_that_separate_churners_perfectly_have_auc_one_and_band_rates(linear_logins):
    account_with(10)  # 100, green
    account_with(5)  # 50, yellow
    account_with(0, churned_at=dt.date(2026, 4, 1), status="churned")  # 0, red, churns
    account_with(2, churned_at=dt.date(2026, 5, 1), status="churned")  # 20, red, churns
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=180)
    assert (result.accounts, result.positives, result.auc) == (4, 2, 1.0)
    rates = {b.band: (b.accounts, b.outcome_rate) for b in result.bands}
    assert rates == {"red": (2, 1.0), "yellow": (1, 0.0), "green": (1, 0.0)}
    deciles = [(d.decile, d.accounts, d.positives, d.min_score, d.lift) for d in result.deciles]
    assert deciles == [(1, 1, 1, 0.0, 2.0), (3, 1, 1, 20.0, 2.0), (6, 1, 0, 50.0, 0.0), (8, 1, 0, 100.0, 0.0)]


def test_reversed_scores_have_auc_zero_and_ties_one_half(linear_logins):
    account_with(10, churned_at=dt.date(2026, 4, 1), status="churned")
    account_with(8, churned_at=dt.date(2026, 4, 1), status="churned")
    account_with(1)
    account_with(0)
    assert backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=180).auc == 0.0
    Account.objects.all().delete()
    for churned in (True, False, True, False):
        account_with(3, **({"churned_at": dt.date(2026, 4, 1), "status": "churned"} if churned else {}))
    assert backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=180).auc == 0.5


def test_churn_after_the_horizon_is_not_an_outcome(linear_logins):
    account_with(0, churned_at=dt.date(2026, 3, 10) + dt.timedelta(days=31), status="churned")
    account_with(0, churned_at=dt.date(2026, 3, 10) + dt.timedelta(days=30), status="churned")
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=30)
    assert (result.accounts, result.positives, result.auc) == (2, 1, 0.5)  # both score 0: a tie


# --- eligibility and as-of --------------------------------------------------------------------


def test_accounts_not_started_or_already_churned_are_left_out_and_counted(linear_logins):
    account_with(1)  # in: contract started 2026-01-01
    account_with(1, contract_start=AS_OF)  # in: started on the day
    account_with(1, contract_start=AS_OF + dt.timedelta(days=1))  # not started
    account_with(1, contract_start=None)  # in: first event 2026-03-09
    late = AccountFactory(contract_start=None)
    logins(late, 1, day="2026-03-11 00:00")  # first event after T: not started
    AccountFactory(contract_start=None)  # no contract, no event: not started
    account_with(1, churned_at=AS_OF, status="churned")  # churned on the day: out
    account_with(1, status="churned", churned_at=None)  # churned, date unknown: out
    account_with(1, churned_at=AS_OF + dt.timedelta(days=1), status="churned")  # in, churns next day
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=90)
    assert result.accounts == 4
    assert result.positives == 1
    assert result.excluded == {"not_started": 3, "churned": 2, "unscored": 0}


def test_the_score_reads_only_what_was_known_at_the_end_of_the_day(linear_logins):
    known = AccountFactory()
    logins(known, 5, day="2026-03-10 23:30")  # the last minutes of the day count: 50
    later = AccountFactory()
    logins(later, 10, day="2026-03-11 00:00")  # the next day does not: 0
    later.churned_at, later.status = dt.date(2026, 4, 1), "churned"
    later.save(update_fields=["churned_at", "status"])
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=90)
    assert result.auc == 1.0
    assert {(d.min_score, d.positives) for d in result.deciles} == {(0.0, 1), (50.0, 0)}


def test_a_segment_scorecard_backtests_only_its_segment(linear_logins):
    card = scorecard(
        [
            measure(
                "logins",
                "event_count",
                {"type": "linear", "zero_at": 0, "full_at": 10},
                event="login",
                days=7,
            )
        ],
        segment="enterprise",
        publish=False,
    )
    account_with(1, segment="enterprise")
    account_with(1, segment="smb")
    assert backtest(scorecard=card, as_of=AS_OF, outcome="churned", horizon_days=90).accounts == 1
    assert backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=90).accounts == 2


# --- renewed and event outcomes ---------------------------------------------------------------


def test_renewed_counts_accounts_renewing_in_the_window_that_did_not_churn(linear_logins):
    account_with(9, renewal_date=dt.date(2026, 6, 1))  # renewed: positive, 90
    account_with(1, renewal_date=dt.date(2026, 6, 1), churned_at=dt.date(2026, 6, 15), status="churned")
    account_with(5, renewal_date=dt.date(2027, 1, 1))  # renewal after the window: left out
    rolled = account_with(4, renewal_date=dt.date(2026, 7, 1))  # renewed: the CRM rolled the date on
    update_account(actor=None, account=rolled, values={"renewal_date": dt.date(2027, 7, 1)})
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="renewed", horizon_days=180)
    assert (result.accounts, result.positives, result.auc) == (3, 2, 1.0)
    assert result.excluded["no_renewal_in_window"] == 1


def test_event_outcome_is_at_least_one_event_within_the_days_after(linear_logins):
    first = account_with(8)
    events(first, ("purchase", "2026-04-09 23:00", None, None))  # day 30: in
    second = account_with(2)
    events(second, ("purchase", "2026-04-10 00:00", None, None))  # day 31: out
    events(second, ("purchase", "2026-03-10 12:00", None, None))  # before T: out
    outcome = {"event": "purchase", "within_days": 30}
    result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome=outcome, horizon_days=None)
    assert (result.accounts, result.positives, result.auc, result.horizon_days) == (2, 1, 1.0, 30)


def test_bad_parameters_name_their_field():
    with pytest.raises(ValidationError) as error:
        validate_backtest({"as_of": "10/03/2026", "outcome": "upsold", "horizon_days": 0})
    assert set(error.value.message_dict) == {"as_of", "outcome", "horizon_days"}
    with pytest.raises(ValidationError) as error:
        validate_backtest(
            {"as_of": "2026-03-10", "outcome": {"event": "x", "within_days": 30}, "horizon_days": 60}
        )
    assert set(error.value.message_dict) == {"horizon_days"}
    with pytest.raises(ValidationError) as error:
        validate_backtest({"as_of": "2026-03-10", "outcome": {"event": "", "within_days": 30}})
    assert set(error.value.message_dict) == {"outcome.event"}


def test_two_scorecards_side_by_side_on_the_same_accounts(linear_logins):
    flat = scorecard(
        [measure("tickets", "open_tickets", {"type": "linear", "zero_at": 5, "full_at": 0})], publish=False
    )
    account_with(10)
    account_with(0, churned_at=dt.date(2026, 4, 1), status="churned")
    current, draft = compare_backtests(
        scorecard=linear_logins, other=flat, as_of=AS_OF, outcome="churned", horizon_days=90
    )
    assert (current.accounts, current.auc) == (2, 1.0)
    assert (draft.accounts, draft.auc) == (2, 0.5)  # no tickets anywhere: every score 100


# --- API and command --------------------------------------------------------------------------

URL = "/api/v1/scorecards/{}/backtest/"
BODY = {"as_of": "2026-03-10", "outcome": "churned", "horizon_days": 180}


@pytest.fixture
def two_teams(world, linear_logins):
    """Team A: a healthy account and one that churns; team B: one account that churns."""
    account_with(5, team=world.team_a, owner=world.csm_a)  # 50: beats team A's churner, not team B's (90)
    account_with(0, team=world.team_a, owner=world.csm_a, churned_at=dt.date(2026, 4, 1), status="churned")
    account_with(9, team=world.team_b, owner=world.csm_b, churned_at=dt.date(2026, 4, 1), status="churned")
    return world


def test_api_backtest_for_an_admin_covers_every_account(two_teams, linear_logins, api):
    response = api(two_teams.admin).post(URL.format(linear_logins.pk), BODY, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["accounts"], body["positives"], body["auc"]) == (3, 2, 0.5)
    assert [b["band"] for b in body["bands"]] == ["red", "yellow", "green"]
    assert body["bands"][0] == {"band": "red", "accounts": 1, "positives": 1, "outcome_rate": 1.0}
    assert {"decile", "accounts", "outcome_rate", "lift"} <= set(body["deciles"][0])


def test_api_backtest_for_a_manager_covers_their_teams_and_csms_may_not(two_teams, linear_logins, api):
    response = api(two_teams.manager_a).post(URL.format(linear_logins.pk), BODY, format="json")
    assert response.status_code == 200
    assert (response.json()["accounts"], response.json()["auc"]) == (2, 1.0)
    assert api(two_teams.csm_a).post(URL.format(linear_logins.pk), BODY, format="json").status_code == 403
    assert api().post(URL.format(linear_logins.pk), BODY, format="json").status_code in (401, 403)
    assert api(two_teams.admin).post(URL.format(999999), BODY, format="json").status_code == 404


def test_api_bad_input_is_a_400_naming_the_field(two_teams, linear_logins, api):
    client = api(two_teams.admin)
    response = client.post(URL.format(linear_logins.pk), {**BODY, "as_of": "soon"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"as_of"}
    response = client.post(URL.format(linear_logins.pk), {**BODY, "horizon_days": "a year"}, format="json")
    assert set(response.json()) == {"horizon_days"}
    recent = (dt.date.today() - dt.timedelta(days=10)).isoformat()  # its 180 days have not passed
    response = client.post(URL.format(linear_logins.pk), {**BODY, "as_of": recent}, format="json")
    assert (response.status_code, set(response.json())) == (400, {"as_of"})
    response = client.post(URL.format(linear_logins.pk) + "?compare=x", BODY, format="json")
    assert (response.status_code, set(response.json())) == (400, {"compare"})
    response = client.post(URL.format(linear_logins.pk), {**BODY, "compare": 999999}, format="json")
    assert (response.status_code, set(response.json())) == (400, {"compare"})


def test_api_compares_two_scorecards(two_teams, linear_logins, api):
    flat = scorecard(
        [measure("tickets", "open_tickets", {"type": "linear", "zero_at": 5, "full_at": 0})], publish=False
    )
    response = api(two_teams.manager_a).post(
        URL.format(linear_logins.pk) + f"?compare={flat.pk}", BODY, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["auc"], body["compare"]["scorecard"], body["compare"]["auc"]) == (1.0, flat.pk, 0.5)


def test_command_prints_the_table(two_teams, linear_logins):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "backtest", str(linear_logins.pk), "--as-of", "2026-03-10", "--horizon-days", "180", stdout=out
    )
    text = out.getvalue()
    assert "accounts 3, positives 2, AUC 0.500" in text
    assert "red" in text and "decile" in text


# --- generated history: the outcome depends on logins only ------------------------------------

FIT, EVAL = dt.date(2026, 3, 10), dt.date(2026, 5, 10)
PURCHASE = {"event": "purchase", "within_days": 30}


def _count(name: str, n: int, day: str) -> list[tuple]:
    return [(name, day, None, None)] * n


@pytest.fixture
def logins_drive_purchases(db):
    """40 accounts; on each date those with 5+ logins in the week before buy within 30 days; views: noise."""
    for i in range(40):
        account = AccountFactory()
        fit_logins, eval_logins = i % 10, (i * 3) % 10
        rows = _count("login", fit_logins, "2026-03-09 10:00") + _count(
            "view", (i // 4) % 10, "2026-03-09 11:00"
        )
        rows += _count("login", eval_logins, "2026-05-09 10:00") + _count(
            "view", (i // 4 + 5) % 10, "2026-05-09 11:00"
        )
        if fit_logins >= 5:
            rows.append(("purchase", "2026-03-20 10:00", None, None))
        if eval_logins >= 5:
            rows.append(("purchase", "2026-05-20 10:00", None, None))
        events(account, *rows)
    linear = {"type": "linear", "zero_at": 0, "full_at": 10}
    return scorecard(
        [
            measure("logins", "event_count", linear, event="login", days=7),
            measure("views", "event_count", linear, event="view", days=7),
        ],
        publish=False,
    )


def test_generated_history_the_predictive_measure_has_a_high_auc_and_the_other_about_half(
    logins_drive_purchases,
):
    linear = {"type": "linear", "zero_at": 0, "full_at": 10}
    logins_only = scorecard([measure("logins", "event_count", linear, event="login", days=7)], publish=False)
    views_only = scorecard([measure("views", "event_count", linear, event="view", days=7)], publish=False)
    assert backtest(scorecard=logins_only, as_of=EVAL, outcome=PURCHASE, horizon_days=None).auc == 1.0
    assert 0.3 <= backtest(scorecard=views_only, as_of=EVAL, outcome=PURCHASE, horizon_days=None).auc <= 0.7


def test_suggested_weights_favour_the_predictive_measure_as_an_audited_draft(logins_drive_purchases):
    from accounts.models import AuditEntry
    from health.models import Scorecard
    from health.suggestions import suggest_weights
    from tests.health.conftest import T

    suggestion = suggest_weights(
        actor=None,
        scorecard=logins_drive_purchases,
        fit_as_of=FIT,
        eval_as_of=EVAL,
        outcome=PURCHASE,
        horizon_days=None,
        now=T,
    )
    draft = suggestion.scorecard
    weights = {m.key: m.weight for m in draft.measures.all()}
    assert weights["logins"] > weights.get("views", 0) * 3
    assert suggestion.coefficients["logins"] > abs(suggestion.coefficients["views"])
    assert draft.status == Scorecard.Status.DRAFT and draft.derived_from_id == logins_drive_purchases.pk
    assert suggestion.suggested_result.auc >= 0.95
    assert suggestion.suggested_result.auc > suggestion.base_result.auc
    assert suggestion.suggested_result.accounts == suggestion.base_result.accounts == 40
    assert AuditEntry.objects.filter(action="scorecard.created", target_id=str(draft.pk)).exists()


def test_suggest_weights_api_is_for_admins_and_names_bad_fields(logins_drive_purchases, world, api):
    url = f"/api/v1/scorecards/{logins_drive_purchases.pk}/suggest-weights/"
    body = {"fit_as_of": "2026-03-10", "eval_as_of": "2026-05-10", "outcome": PURCHASE}
    assert api(world.manager_a).post(url, body, format="json").status_code == 403
    response = api(world.admin).post(url, {**body, "eval_as_of": "2026-03-20"}, format="json")
    assert (response.status_code, set(response.json())) == (400, {"eval_as_of"})
    response = api(world.admin).post(url, {**body, "fit_as_of": "x"}, format="json")
    assert (response.status_code, set(response.json())) == (400, {"fit_as_of"})
    response = api(world.admin).post(url, body, format="json")
    assert response.status_code == 201
    result = response.json()
    assert result["scorecard"]["status"] == "draft"
    assert result["auc_suggested"] > result["auc_base"]


def test_the_documented_shop_example_gives_the_documented_figures(db):
    """docs/backtest.md: import the purchase history and the RFM scorecard, backtest as printed there."""
    from django.core.management import call_command

    from health.models import Scorecard

    call_command("import_csv", "accounts", "docs/examples/shop_customers.csv", stdout=StringIO())
    call_command("import_csv", "events", "docs/examples/shop_purchases.csv", stdout=StringIO())
    call_command("import_config", "docs/examples/shop_rfm_scorecard.json", "--draft", stdout=StringIO())
    card = Scorecard.objects.prefetch_related("measures").get(name="Shop RFM")
    purchase = {"event": "purchase", "within_days": 14}
    result = backtest(scorecard=card, as_of=dt.date(2026, 6, 30), outcome=purchase, horizon_days=None)
    assert (result.accounts, result.positives, result.auc) == (39, 27, 0.7423)
    assert result.excluded == {"not_started": 1, "churned": 0, "unscored": 0}


def test_a_backtest_costs_the_same_few_queries_whatever_the_number_of_accounts(
    linear_logins, django_assert_max_num_queries
):
    for n in range(12):
        account_with(n % 10, **({"churned_at": dt.date(2026, 4, 1), "status": "churned"} if n % 3 else {}))
    with django_assert_max_num_queries(5):  # active segments, accounts and outcomes, measures, one metric
        result = backtest(scorecard=linear_logins, as_of=AS_OF, outcome="churned", horizon_days=90)
    assert result.accounts == 12
