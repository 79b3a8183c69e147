"""`manage.py import_csv`: each kind imports, and a file with a bad row stores nothing."""

import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts import csv_import
from accounts.models import Account, AuditEntry, Contact, Event, EventDaily, SurveyResponse, Ticket
from tests.factories import AccountFactory

EXAMPLES = Path(settings.BASE_DIR) / "docs" / "examples"

EVENTS_HEADER = "account,name,occurred_at,value,contact,properties,idempotency_key\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(kind: str, path: Path) -> str:
    out = io.StringIO()
    call_command("import_csv", kind, str(path), "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(kind: str, path: Path) -> str:
    with pytest.raises(CommandError) as excinfo:
        run(kind, path)
    return str(excinfo.value)


@pytest.fixture
def example_accounts(db, tmp_path) -> dict[str, Account]:
    run("accounts", shutil.copy(EXAMPLES / "accounts.csv", tmp_path / "accounts.csv"))
    return {account.external_id: account for account in Account.objects.all()}


# --- accounts -----------------------------------------------------------------------------


def test_accounts_example_creates_the_accounts(db, tmp_path):
    out = run("accounts", shutil.copy(EXAMPLES / "accounts.csv", tmp_path / "accounts.csv"))

    assert "3 row(s) read, 3 created, 0 updated" in out
    acme, globex, initech = (Account.objects.get(external_id=e) for e in ("acme", "globex", "initech"))
    assert acme.arr == Decimal("120000.00")
    assert acme.renewal_date == dt.date(2027, 1, 1)
    assert globex.currency == "EUR"
    assert initech.currency == "USD"
    assert initech.status == Account.Status.CHURNED
    assert initech.churned_at == dt.date(2026, 2, 20)
    assert initech.churn_reason == "Budget cut, moved to a cheaper tool"
    assert AuditEntry.objects.filter(action="account.created").count() == 3


def test_accounts_are_upserted_by_external_id_with_owner_and_team_by_name(world, tmp_path):
    AccountFactory(external_id="acme", name="Acme", arr=Decimal("1000.00"), segment="smb")
    path = write(
        tmp_path,
        "accounts.csv",
        "external_id,name,arr,owner,team\n"
        "acme,,2500,csm_a,Team A\n"
        f"hooli,Hooli,,{world.csm_b.pk},{world.team_b.pk}\n",
    )

    out = run("accounts", path)

    assert "2 row(s) read, 1 created, 1 updated" in out
    acme = Account.objects.get(external_id="acme")
    # An empty cell is "missing": the name and segment are left as they were.
    assert (acme.name, acme.segment, acme.arr) == ("Acme", "smb", Decimal("2500.00"))
    assert (acme.owner, acme.team) == (world.csm_a, world.team_a)
    hooli = Account.objects.get(external_id="hooli")
    assert (hooli.owner, hooli.team) == (world.csm_b, world.team_b)
    change = AuditEntry.objects.get(action="account.changed")
    assert change.actor is None
    assert change.changes["arr"] == ["1000.00", "2500.00"]
    assert change.changes["owner"] == [None, world.csm_a.pk]


def test_accounts_file_with_a_bad_row_reports_its_line_and_stores_nothing(world, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "external_id,name,arr,currency,owner,contract_start,renewal_date\n"
        "one,One,100,USD,csm_a,2026-01-01,2027-01-01\n"
        'two,"Two,\nInc.",200,USD,,2026-01-01,2027-01-01\n'  # a name over two lines: 3 and 4
        "three,Three,-5,US1,nobody,2026-01-01,2027-01-01\n"
        ",Four,1,USD,,,\n"
        "five,Five,1,USD,,2026-01-01,2025-01-01\n",
    )

    message = refused("accounts", path)

    assert "line 5: arr: Ensure this value is greater than or equal to 0." in message
    assert "line 5: currency: Must be a three-letter ISO 4217 code" in message
    assert "line 5: owner: no user with that username or id: 'nobody'" in message
    assert "line 6: external_id: This field is required." in message
    assert "line 7: renewal_date: Must not be before contract_start." in message
    assert message.count("line ") == 5
    assert not Account.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_repeated_new_account_after_an_error_is_checked_as_an_update(db, tmp_path):
    path = write(tmp_path, "accounts.csv", "external_id,name,arr\nbad,Bad,-1\nnew,New,1\nnew,,2\n")

    message = refused("accounts", path)

    assert "line 2: arr:" in message
    assert "line 4" not in message


# --- events -------------------------------------------------------------------------------


def test_events_example_is_stored_with_its_daily_rollups(example_accounts, tmp_path):
    out = run("events", shutil.copy(EXAMPLES / "events.csv", tmp_path / "events.csv"))

    assert "6 row(s) read, 6 accepted, 0 updated, 0 duplicate(s)" in out
    acme, globex = example_accounts["acme"], example_accounts["globex"]
    assert Event.objects.count() == 6
    exported = Event.objects.get(idempotency_key="acme-0003")
    assert exported.properties == {"format": "pdf", "pages": 12}
    assert exported.value == Decimal("3.00")
    assert exported.contact.email == "ana@acme.example.com"
    assert Event.objects.get(idempotency_key="acme-0004").properties == {}
    assert Contact.objects.get(account=globex, external_id="g-7781")
    rollups = {(d.account_id, d.name, d.day): (d.count, d.value_sum) for d in EventDaily.objects.all()}
    assert rollups == {
        (acme.pk, "login", dt.date(2026, 11, 2)): (2, Decimal("0.00")),
        (acme.pk, "report_exported", dt.date(2026, 11, 3)): (1, Decimal("3.00")),
        (acme.pk, "seats_used", dt.date(2026, 11, 3)): (1, Decimal("42.00")),
        # 08:05 at -05:00 is 13:05 UTC, the same UTC day.
        (globex.pk, "login", dt.date(2026, 11, 2)): (1, Decimal("0.00")),
        (globex.pk, "invoice_paid", dt.date(2026, 11, 5)): (1, Decimal("4000.00")),
    }


def test_reimporting_events_with_idempotency_keys_counts_duplicates_and_stores_nothing_new(
    example_accounts, tmp_path
):
    path = shutil.copy(EXAMPLES / "events.csv", tmp_path / "events.csv")
    run("events", path)
    rollups_before = list(EventDaily.objects.values_list("account_id", "name", "day", "count", "value_sum"))

    out = run("events", path)

    assert "6 row(s) read, 0 accepted, 0 updated, 6 duplicate(s)" in out
    assert Event.objects.count() == 6
    assert list(EventDaily.objects.values_list("account_id", "name", "day", "count", "value_sum")) == (
        rollups_before
    )


def test_an_idempotency_key_repeated_across_chunks_is_a_duplicate(example_accounts, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    rows = "".join(f"acme,login,2026-11-02T09:{minute:02d}:00Z,,,,k{minute % 3}\n" for minute in range(6))
    path = write(tmp_path, "events.csv", EVENTS_HEADER + rows)

    out = run("events", path)

    assert "6 row(s) read, 3 accepted, 0 updated, 3 duplicate(s)" in out
    assert EventDaily.objects.get(name="login").count == 3


def test_events_stored_in_several_parts_dedupe_across_them_and_roll_up_once(
    example_accounts, tmp_path, monkeypatch
):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(csv_import, "STORE_EVERY_ROWS", 4)
    rows = "".join(f"acme,login,2026-11-02T09:{minute:02d}:00Z,1.5,,,k{minute % 5}\n" for minute in range(11))
    path = write(tmp_path, "events.csv", EVENTS_HEADER + rows)

    out = run("events", path)

    assert "11 row(s) read, 5 accepted, 0 updated, 6 duplicate(s)" in out
    assert sorted(Event.objects.values_list("idempotency_key", "occurred_at__minute")) == [
        (f"k{minute}", minute) for minute in range(5)
    ]
    daily = EventDaily.objects.get(name="login")
    assert (daily.count, daily.value_sum) == (5, Decimal("7.50"))


def test_a_bad_event_after_a_stored_part_stores_nothing(example_accounts, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(csv_import, "STORE_EVERY_ROWS", 2)
    rows = [f"acme,login,2026-11-02T09:{minute:02d}:00Z,1,,,key-{minute}\n" for minute in range(6)]
    rows[5] = "acme,login,2026-11-02T09:05:00Z,1,,,k\x00\n"  # line 7, after two stored parts
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "".join(rows))

    message = refused("events", path)

    assert "line 7: idempotency_key: must not contain NUL characters" in message
    assert not Event.objects.exists()
    assert not EventDaily.objects.exists()


def test_events_file_with_a_bad_row_reports_its_line_and_stores_nothing(example_accounts, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        EVENTS_HEADER
        + "acme,login,2026-11-02T09:15:00Z,,,,\n"
        + 'acme,login,2026-11-02T09:16:00Z,,,"{""a"":\n1}",\n'  # a cell over two lines: 3 and 4
        + "acme,login,2026-11-02T09:17:00,,,,\n"
        + "acme,login,2026-11-02T09:18:00Z,lots,,[1],\n",
    )

    message = refused("events", path)

    assert "line 5: occurred_at: must include a time zone" in message
    assert "line 6: value: must be a decimal number" in message
    assert "line 6: properties: must be a JSON object" in message
    assert "line 2" not in message and "line 3" not in message
    assert not Event.objects.exists()
    assert not EventDaily.objects.exists()


def test_a_bad_event_in_the_second_chunk_stores_nothing_of_the_first(example_accounts, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 3)
    rows = [f"acme,login,2026-11-02T09:{minute:02d}:00Z,1,,,key-{minute}\n" for minute in range(7)]
    rows[4] = "acme,,2026-11-02T09:04:00Z,1,,,key-4\n"  # line 6, the second chunk
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "".join(rows))

    message = refused("events", path)

    assert "line 6: name: is required" in message
    assert message.count("line ") == 1
    assert not Event.objects.exists()
    assert not EventDaily.objects.exists()


def test_a_bad_event_after_the_first_10000_rows_is_reported_by_line(example_accounts, tmp_path):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = [f"acme,login,{(start + dt.timedelta(seconds=i)).isoformat()},,,,\n" for i in range(10_005)]
    rows[10_002] = "nowhere,login,2026-11-02T09:00:00Z,,,,\n"  # line 10,004
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "".join(rows))

    message = refused("events", path)

    assert "line 10004: account: unknown account 'nowhere'" in message
    assert message.count("line ") == 1
    assert not Event.objects.exists()
    assert not EventDaily.objects.exists()


def test_a_file_of_more_than_one_chunk_is_imported_whole(example_accounts, tmp_path):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = [f"acme,login,{(start + dt.timedelta(seconds=i)).isoformat()},1,,,\n" for i in range(10_005)]
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "".join(rows))

    out = run("events", path)

    assert "10,005 row(s) read, 10,005 accepted" in out
    assert EventDaily.objects.get(name="login").count == 10_005
    assert EventDaily.objects.get(name="login").value_sum == Decimal("10005.00")


def test_unknown_accounts_are_reported_by_line(example_accounts, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        EVENTS_HEADER + "acme,login,2026-11-02T09:15:00Z,,,,\nglobx,login,2026-11-02T09:15:00Z,,,,\n",
    )

    assert "line 3: account: unknown account 'globx'" in refused("events", path)
    assert not Event.objects.exists()


def test_errors_are_reported_up_to_fifty(example_accounts, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 20)
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "acme,,2026-11-02T09:15:00Z,,,,\n" * 200)

    message = refused("events", path)

    assert message.count("name: is required") == 50
    assert "line 51: name" in message and "line 52" not in message
    assert "reading stopped after 50 error(s)" in message


def test_a_row_with_more_cells_than_the_header_is_refused(example_accounts, tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "acme,login,2026-11-02T09:15:00Z,,,,,extra\n")

    assert "line 2: has 8 cells but the header has 7 columns" in refused("events", path)


def test_a_value_the_database_refuses_is_reported_by_line_not_raised(example_accounts, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        EVENTS_HEADER
        + "acme,login,2026-11-02T09:15:00Z,,,,\n"
        + 'acme,login,2026-11-02T09:16:00Z,,,"{""x"": ""a\\u0000b""}",\n',
    )

    message = refused("events", path)

    assert "line 3: " in message
    assert "line 2" not in message
    assert not Event.objects.exists()
    assert not EventDaily.objects.exists()


# --- tickets and surveys ------------------------------------------------------------------


def test_tickets_example_is_stored_and_a_reimport_updates(example_accounts, tmp_path):
    path = shutil.copy(EXAMPLES / "tickets.csv", tmp_path / "tickets.csv")

    assert "3 row(s) read, 3 created, 0 updated" in run("tickets", path)
    exported = Ticket.objects.get(external_id="T-1002")
    assert exported.subject.startswith("Export to PDF cuts the last page\n")
    assert exported.closed_at == dt.datetime(2026, 10, 22, 9, 10, tzinfo=dt.UTC)
    assert Ticket.objects.get(external_id="T-2001").opened_at == dt.datetime(
        2026, 11, 6, 10, 45, tzinfo=dt.UTC
    )

    path.write_text(
        path.read_text().replace(
            "high,open,2026-11-04T08:30:00Z,", "high,solved,2026-11-04T08:30:00Z,2026-11-05T08:00:00Z"
        )
    )
    assert "3 row(s) read, 0 created, 3 updated" in run("tickets", path)
    assert Ticket.objects.count() == 3
    assert Ticket.objects.get(external_id="T-1001").status == Ticket.Status.SOLVED


def test_a_ticket_closed_before_it_opened_is_reported_by_line(example_accounts, tmp_path):
    path = write(
        tmp_path,
        "tickets.csv",
        "account,external_id,opened_at,closed_at\n"
        "acme,T-1,2026-11-04T08:30:00Z,\n"
        "acme,T-2,2026-11-04T08:30:00Z,2026-11-03T08:30:00Z\n",
    )

    assert "line 3: closed_at: must not be before opened_at" in refused("tickets", path)
    assert not Ticket.objects.exists()


def test_surveys_example_is_stored_and_a_reimport_counts_duplicates(example_accounts, tmp_path):
    path = shutil.copy(EXAMPLES / "surveys.csv", tmp_path / "surveys.csv")

    assert "3 row(s) read, 3 accepted, 0 updated, 0 duplicate(s)" in run("surveys", path)
    nps = SurveyResponse.objects.get(external_id="nps-globex-2026-11")
    assert (nps.kind, nps.score, nps.contact.external_id) == ("nps", 6, "g-7781")
    assert SurveyResponse.objects.get(external_id="csat-T-1001").comment == ""

    assert "3 row(s) read, 0 accepted, 0 updated, 3 duplicate(s)" in run("surveys", path)
    assert SurveyResponse.objects.count() == 3


def test_a_csat_score_out_of_range_is_reported_by_line(example_accounts, tmp_path):
    path = write(
        tmp_path,
        "surveys.csv",
        "account,kind,score,responded_at\nacme,nps,0,2026-11-10T16:20:00Z\nacme,csat,0,2026-11-10T16:20:00Z\n",
    )

    assert "line 3: score: a CSAT score must be" in refused("surveys", path)
    assert not SurveyResponse.objects.exists()


# --- the file itself ----------------------------------------------------------------------


def test_a_missing_required_column_is_refused_before_any_work(db, tmp_path, django_assert_num_queries):
    path = write(tmp_path, "events.csv", "account,name,value\nacme,login,1\n")

    with django_assert_num_queries(0):
        message = refused("events", path)

    assert "line 1: occurred_at: required column is missing from the header" in message


def test_an_accounts_file_without_a_name_column_is_refused(db, tmp_path):
    path = write(tmp_path, "accounts.csv", "external_id,arr\nacme,1\n")

    assert "line 1: name: required column is missing from the header" in refused("accounts", path)


def test_an_unknown_kind_is_a_usage_error(db, tmp_path):
    path = write(tmp_path, "x.csv", "a\n1\n")

    with pytest.raises(CommandError, match="invalid choice: 'contacts'"):
        call_command("import_csv", "contacts", str(path))


def test_a_utf8_file_with_a_byte_order_mark_and_crlf_line_ends_is_read(example_accounts, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(
        ("\ufeff" + EVENTS_HEADER + "acme,connexion réussie,2026-11-02T09:15:00Z,,,,\n")
        .replace("\n", "\r\n")
        .encode()
    )

    assert "1 accepted" in run("events", path)
    assert Event.objects.get().name == "connexion réussie"


def test_a_file_that_is_not_utf8_is_refused_with_its_line(example_accounts, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(
        (EVENTS_HEADER + "acme,login,2026-11-02T09:15:00Z,,,,\nacme,café,2026-11-02T09:15:00Z,,,,\n").encode(
            "latin-1"
        )
    )

    message = refused("events", path)

    assert "is not valid UTF-8" in message
    assert not Event.objects.exists()


def test_unknown_columns_are_ignored_with_a_warning(example_accounts, tmp_path):
    path = write(
        tmp_path, "events.csv", "account,name,occurred_at,colour\nacme,login,2026-11-02T09:15:00Z,red\n"
    )
    err = io.StringIO()

    call_command("import_csv", "events", str(path), "--no-progress", stdout=io.StringIO(), stderr=err)

    assert "Ignored unknown column(s): colour" in err.getvalue()
    assert Event.objects.count() == 1


def test_the_domain_function_reads_an_open_text_file(example_accounts):
    text = io.StringIO("account,external_id,opened_at\nacme,T-9,2026-11-04T08:30:00Z\n", newline="")

    summary = csv_import.import_csv(kind="tickets", path_or_file=text)

    assert (summary.rows, summary.created, summary.updated) == (1, 1, 0)
    assert Ticket.objects.get().external_id == "T-9"


def test_the_progress_bar_shows_on_a_terminal(example_accounts, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    path = shutil.copy(EXAMPLES / "events.csv", tmp_path / "events.csv")

    call_command("import_csv", "events", str(path), stdout=io.StringIO())

    assert "Importing events" in terminal.getvalue()
    assert "100%" in terminal.getvalue()
