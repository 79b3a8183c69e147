"""What the access app stores: failed sign-in attempts per username (tokens are knox's AuthToken)."""

from django.db import models


class LoginAttempts(models.Model):
    """Sign-in attempts for one username in the current window, counted before the password is checked.

    One row per username, incremented atomically (``INSERT … ON CONFLICT DO UPDATE``), so any
    number of concurrent attempts cannot check more passwords than the limit allows.
    """

    username = models.CharField(max_length=150, primary_key=True)  # lowercased
    attempts = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "login attempts"

    def __str__(self) -> str:
        return f"{self.username}: {self.attempts} since {self.window_started_at:%Y-%m-%d %H:%M}"
