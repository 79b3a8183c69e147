"""The chaos driver: SIGKILL the worker at random points of the scheduled pipeline, restart it, check.

Used by ``tests/integration/test_chaos.py`` (20 cycles in ``make test``) and by ``make chaos``
(500 cycles, figures written into docs/reliability.md). The processes are real: one Celery
worker, two beats on django-celery-beat's database scheduler sending the pipeline every
``PIPELINE_EVERY`` seconds, an aiosmtpd server. Each cycle adds an account that the renewal
playbooks fire on (so there is always new work: tasks, alerts, emails), picks a target phase
with a seeded RNG, waits for the worker to be in it, kills it there (or, for the phase
``smtp_accepted``, the SMTP server kills it after storing a message and before answering 250,
the one window where a resend is unavoidable), and starts it again. At the end the processes
run undisturbed until everything due has arrived, and the invariants are checked against the
database and the SMTP server.
"""

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import Count
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import Account
from playbooks.models import Alert, EmailDelivery, PlaybookRun, Task
from playbooks.pipeline import run_pipeline
from tests.support.processes import Beat, Worker
from tests.support.smtp import SMTPSink

# The pipeline's tasks, by the phase they are.
PHASE_OF_TASK = {
    "playbooks.tasks.run_pipeline_task": "pipeline_chain",
    "journeys.tasks.evaluate_journeys_task": "journeys",
    "playbooks.tasks.evaluate_journeys_incremental_task": "journeys",
    "health.tasks.recompute_health_task": "health",
    "playbooks.tasks.evaluate_playbooks_task": "playbooks",
    "playbooks.tasks.deliver_emails_task": "delivery",
}
SMTP_ACCEPTED = "smtp_accepted"  # killed by the SMTP server between storing a message and its 250
TARGET_PHASES = (*PHASE_OF_TASK.values(), SMTP_ACCEPTED, "anywhere")
PIPELINE_EVERY = 2  # seconds between scheduled pipelines (each beat sends it)
LEASE_SECONDS = 4  # the email lease in the worker: a dead worker's row is resent after this
WAIT_FOR_PHASE = 12.0  # seconds to wait for the target phase before killing wherever it is
WAIT_FOR_READY = 60.0
SETTLE_SECONDS = 120.0
QUIET_SECONDS = 3 * PIPELINE_EVERY  # after everything arrived: more runs that must add nothing


class ChaosFailure(AssertionError):
    pass


@dataclass
class ChaosFigures:
    cycles: int
    seed: int
    kills_by_phase: Counter = field(default_factory=Counter)
    accounts: int = 0
    alerts_due: int = 0
    alerts_created: int = 0
    emails_due: int = 0
    emails_sent: int = 0
    emails_received: int = 0
    duplicate_tasks: int = 0
    duplicate_alerts: int = 0
    duplicate_runs: int = 0
    duplicate_outbox_rows: int = 0
    resent_messages: int = 0  # copies beyond the first, by Message-ID
    forced_in_window: int = 0  # kills in the unavoidable window (SMTP accepted, not yet marked)
    worker_starts: int = 0
    pipelines_sent_by_beats: int = 0
    wall_seconds: float = 0.0

    @property
    def kills(self) -> int:
        return sum(self.kills_by_phase.values())

    def markdown_table(self) -> str:
        phases = ", ".join(f"{phase} {count}" for phase, count in sorted(self.kills_by_phase.items()))
        rows = [
            ("Kill cycles (SIGKILL + restart)", f"{self.cycles} (seed {self.seed})"),
            ("Kills by phase the worker was in", phases),
            ("Worker starts", self.worker_starts),
            ("Pipelines sent by the two beats", self.pipelines_sent_by_beats),
            ("Accounts added (one a cycle)", self.accounts),
            ("Alerts due / created", f"{self.alerts_due} / {self.alerts_created}"),
            (
                "Emails due / marked sent / received",
                f"{self.emails_due} / {self.emails_sent} / {self.emails_received}",
            ),
            (
                "Duplicate tasks, alerts, playbook runs, outbox rows (database)",
                f"{self.duplicate_tasks}, "
                f"{self.duplicate_alerts}, {self.duplicate_runs}, {self.duplicate_outbox_rows}",
            ),
            ("Emails received twice (same Message-ID)", self.resent_messages),
            ("… of which forced in the window (SMTP 250 not yet recorded)", self.forced_in_window),
            ("Wall time", f"{self.wall_seconds:.0f} s"),
        ]
        lines = ["| Figure | Value |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


@dataclass
class ChaosRun:
    """One chaos experiment over running processes; ``run()`` returns its figures or raises."""

    worker: Worker
    beats: list[Beat]
    sink: SMTPSink
    make_account: Callable[[int], Account]
    cycles: int
    seed: int = 8
    log: Callable[[str], None] = print
    figures: ChaosFigures = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.figures = ChaosFigures(cycles=self.cycles, seed=self.seed)
        self._armed = False
        self._arming = threading.Lock()  # the SMTP server's thread must not kill a restarted worker
        self._forced_ids: list[str] = []

    # --- the experiment ------------------------------------------------------------------------

    def run(self) -> ChaosFigures:
        started = time.monotonic()
        control = self.make_account(0)
        # The control account goes through the pipeline here, in this process, before any chaos:
        # what it gets (tasks, alerts) is what every account added later must get, exactly once.
        run_pipeline(now=timezone.now())
        expected_alerts = Alert.objects.filter(account=control).count()
        expected_tasks = Task.objects.filter(account=control).count()
        expected_runs = PlaybookRun.objects.filter(account=control).count()
        if not expected_alerts:
            raise ChaosFailure("the control account raised no alert: the scenario tests nothing")
        self._install_schedule()
        self.sink.after_store = self._kill_in_window
        self.worker.start()
        for beat in self.beats:
            beat.start()
        accounts: list[int] = []
        for cycle in range(1, self.cycles + 1):
            self._kill_once(cycle, add_work=lambda cycle=cycle: accounts.append(self.make_account(cycle).pk))
        self._wait_until_settled(accounts, expected_alerts)
        time.sleep(QUIET_SECONDS)
        self._check(accounts, {Alert: expected_alerts, Task: expected_tasks, PlaybookRun: expected_runs})
        self.figures.wall_seconds = time.monotonic() - started
        return self.figures

    def _install_schedule(self) -> None:
        every, _ = IntervalSchedule.objects.get_or_create(
            every=PIPELINE_EVERY, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.create(
            name="pipeline (chaos)",
            task="playbooks.tasks.run_pipeline_task",
            interval=every,
            expire_seconds=3 * PIPELINE_EVERY,
        )

    def _kill_in_window(self, stored: int) -> None:
        """SMTP server hook: after storing a message, before its 250; kill the worker if armed."""
        with self._arming:
            if self._armed:
                self._armed = False
                self._forced_ids.append(self.sink.messages[stored - 1].message_id)
                self.worker.kill()

    def _ensure_worker_ready(self) -> None:
        if self.worker.is_dead():
            self.worker.start()
        deadline = time.monotonic() + WAIT_FOR_READY
        while not self.worker.is_ready():
            if self.worker.is_dead():
                raise ChaosFailure(f"the worker died on its own while starting\n{self.worker.logs()[-4000:]}")
            if time.monotonic() > deadline:
                raise ChaosFailure(
                    f"the worker was not ready in {WAIT_FOR_READY:.0f} s\n{self.worker.logs()[-4000:]}"
                )
            time.sleep(0.05)

    def _kill_once(self, cycle: int, add_work: Callable[[], None]) -> None:
        """Add this cycle's account, wait for the target phase, kill the worker there, start it again."""
        target = self.rng.choice(TARGET_PHASES)
        delay = self.rng.uniform(0, 0.3)
        kills_before = self.worker.kills
        if target == SMTP_ACCEPTED:
            self._armed = True  # before the account exists: its emails are the ones to catch
        add_work()
        self._ensure_worker_ready()
        deadline = time.monotonic() + WAIT_FOR_PHASE
        phase = None
        while time.monotonic() < deadline:
            if self.worker.kills > kills_before:  # the SMTP server did it
                phase = SMTP_ACCEPTED
                break
            if self.worker.is_dead() and self.worker.kills == kills_before:
                raise ChaosFailure(f"cycle {cycle}: the worker died on its own\n{self.worker.logs()[-4000:]}")
            in_flight = PHASE_OF_TASK.get(self.worker.task_in_flight() or "")
            if target == "anywhere" or in_flight == target:
                time.sleep(delay if target != "anywhere" else self.rng.uniform(0, PIPELINE_EVERY))
                break
            time.sleep(0.01)
        with self._arming:
            self._armed = False
        if phase is None:
            if self.worker.kills > kills_before:
                phase = SMTP_ACCEPTED
            else:
                phase = PHASE_OF_TASK.get(self.worker.task_in_flight() or "", "idle")
                self.worker.kill()
        self.figures.kills_by_phase[phase] += 1
        if cycle % 10 == 0 or cycle == self.cycles:
            self.log(
                f"chaos: cycle {cycle}/{self.cycles}, kills by phase {dict(self.figures.kills_by_phase)}"
            )
        self.worker.start()

    def _wait_until_settled(self, accounts: list[int], expected_alerts: int) -> None:
        """Let the processes run undisturbed until every alert is made and every email arrived."""
        self._ensure_worker_ready()
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            alerts = Alert.objects.filter(account__in=accounts).count()
            unsent = EmailDelivery.objects.exclude(status=EmailDelivery.Status.SENT).count()
            expected_ids = _message_ids(EmailDelivery.objects.filter(alert__account__in=accounts))
            missing = expected_ids - set(self.sink.message_id_counts())
            if alerts == expected_alerts * len(accounts) and not unsent and not missing:
                return
            if self.worker.is_dead():
                raise ChaosFailure(f"the worker died on its own while settling\n{self.worker.logs()[-4000:]}")
            if time.monotonic() > deadline:
                raise ChaosFailure(
                    f"not settled in {SETTLE_SECONDS:.0f} s: "
                    f"{alerts} of {expected_alerts * len(accounts)} alerts, "
                    f"{unsent} outbox rows not sent, {len(missing)} emails not received\n"
                    f"{self.worker.logs()[-6000:]}"
                )
            time.sleep(0.2)

    # --- the invariants -----------------------------------------------------------------------

    def _check(self, accounts: list[int], expected: dict[type, int]) -> None:
        f = self.figures
        f.accounts = len(accounts)
        f.worker_starts = self.worker.starts
        f.alerts_due = expected[Alert] * len(accounts)
        f.alerts_created = Alert.objects.filter(account__in=accounts).count()
        f.duplicate_tasks = _duplicates(Task.objects.all(), "playbook", "step", "account")
        f.duplicate_alerts = _duplicates(Alert.objects.all(), "playbook", "step", "account", "recipient_key")
        f.duplicate_runs = _duplicates(PlaybookRun.objects.all(), "playbook", "account", "trigger_key")
        f.duplicate_outbox_rows = _duplicates(EmailDelivery.objects.filter(alert__isnull=False), "alert")
        rows = EmailDelivery.objects.filter(alert__account__in=accounts)
        f.emails_due = rows.count()
        f.emails_sent = rows.filter(status=EmailDelivery.Status.SENT).count()
        counts = self.sink.message_id_counts()
        chaos_ids = _message_ids(rows)
        f.emails_received = sum(1 for message_id in chaos_ids if counts[message_id])
        f.resent_messages = sum(count - 1 for count in counts.values())
        f.forced_in_window = len(self._forced_ids)
        beat_logs = "".join(beat.logs() for beat in self.beats)
        f.pipelines_sent_by_beats = beat_logs.count("Sending due task pipeline (chaos)")

        problems = []
        for model, count in expected.items():
            per_account = Counter(
                model.objects.filter(account__in=accounts).values_list("account", flat=True)
            )
            wrong = {pk: per_account[pk] for pk in accounts if per_account[pk] != count}
            if wrong:
                problems.append(
                    f"accounts without exactly {count} {model.__name__} rows (as the control): {wrong}"
                )
        if f.duplicate_tasks or f.duplicate_alerts or f.duplicate_runs or f.duplicate_outbox_rows:
            problems.append("duplicates in the database")
        if not f.emails_due or f.emails_due != f.alerts_created:
            problems.append(f"{f.emails_due} emails queued for {f.alerts_created} alerts")
        if f.emails_sent != f.emails_due or f.emails_received != f.emails_due:
            problems.append("an email not marked sent or not received")
        if set(counts) - chaos_ids:
            problems.append(f"unexpected messages received: {sorted(set(counts) - chaos_ids)[:5]}")
        delivery_kills = f.kills_by_phase["delivery"] + f.kills_by_phase[SMTP_ACCEPTED]
        if f.resent_messages > delivery_kills:
            problems.append(f"{f.resent_messages} resends for {delivery_kills} kills during delivery")
        if any(counts[message_id] < 2 for message_id in self._forced_ids):
            problems.append("a message accepted by the server when its sender died was not resent")
        if problems:
            raise ChaosFailure("; ".join(problems) + "\n" + self.figures.markdown_table())


def _message_ids(rows) -> set[str]:
    return {row.message_id for row in rows.only("key")}


def _duplicates(queryset, *fields: str) -> int:
    """How many rows beyond the first share the same values of ``fields``."""
    groups = queryset.values(*fields).annotate(n=Count("pk")).filter(n__gt=1)
    return sum(group["n"] - 1 for group in groups)


def write_figures(figures: ChaosFigures, path: Path) -> None:
    """Replace the chaos figures in docs/reliability.md (between its markers) with these."""
    begin, end = "<!-- chaos figures: begin -->", "<!-- chaos figures: end -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise ChaosFailure(f"{path} has no {begin} … {end} markers")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{begin}\nRun of {stamp} (`make chaos`):\n\n{figures.markdown_table()}\n{end}"
    head, rest = text.split(begin, 1)
    path.write_text(head + block + rest.split(end, 1)[1])
