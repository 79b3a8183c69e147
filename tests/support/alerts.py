"""Alerts to outside addresses, made in bulk, for the email delivery tests."""

from accounts.models import Account
from playbooks.models import Alert


def alerts_to_outside_addresses(account: Account, count: int, *, width: int) -> list[Alert]:
    """``count`` band alerts on ``account``, each to its own address ``r<i>@customers.example``."""
    return Alert.objects.bulk_create(
        Alert(
            account=account,
            email=f"r{i:0{width}d}@customers.example",
            recipient_key=f"email:r{i:0{width}d}@customers.example",
            kind="band_entered",
            title=f"Alert {i}",
        )
        for i in range(count)
    )
