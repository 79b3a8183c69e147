"""Each CSM's book side by side: accounts, ARR, band counts, open and overdue tasks (API.md, Reports).

Three queries whatever the number of accounts: the book grouped by owner and band, the owners,
the open tasks grouped by assignee.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Account
from playbooks.models import Task
from reports.renewals import BANDS, band_key, display_name


@dataclass
class CsmBook:
    owner_id: int | None
    username: str
    name: str
    accounts: int = 0
    arr: Decimal = Decimal(0)
    band_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BANDS, 0))
    arr_by_band: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BANDS, Decimal("0.00")))
    open_tasks: int = 0
    overdue_tasks: int = 0

    @property
    def red_share(self) -> float:
        return self.band_counts["red"] / self.accounts if self.accounts else 0.0


def portfolio_report(*, accounts: QuerySet[Account], today: dt.date) -> list[CsmBook]:
    """The active accounts of ``accounts`` per owner, largest book (by ARR) first; unowned last."""
    rows = (
        accounts.filter(status=Account.Status.ACTIVE)
        .values("owner_id", "health_band")
        .annotate(n=Count("id"), arr=Sum("arr"))
        .order_by()
    )
    books: dict[int | None, CsmBook] = {}
    for row in rows:
        book = books.setdefault(row["owner_id"], CsmBook(row["owner_id"], "", ""))
        band = band_key(row["health_band"])
        book.accounts += row["n"]
        book.arr += row["arr"] or 0
        book.band_counts[band] += row["n"]
        book.arr_by_band[band] += row["arr"] or 0
    owner_ids = [pk for pk in books if pk is not None]
    for user in get_user_model().objects.filter(pk__in=owner_ids):
        books[user.pk].username = user.username
        books[user.pk].name = display_name(user)
    if None in books:
        books[None].name = display_name(None)
    tasks = (
        Task.objects.filter(account__in=accounts, status=Task.Status.OPEN, assignee_id__in=owner_ids)
        .values("assignee_id")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_date__lt=today)))
        .order_by()
    )
    for row in tasks:
        books[row["assignee_id"]].open_tasks = row["open"]
        books[row["assignee_id"]].overdue_tasks = row["overdue"]
    return sorted(books.values(), key=lambda b: (b.owner_id is None, -b.arr, b.name))
