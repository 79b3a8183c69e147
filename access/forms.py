"""The sign-in form, saying so when a username is locked out by the attempt limit."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class LimitedAuthenticationForm(AuthenticationForm):
    locked_message = ""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            retry_after = getattr(self.request, "login_retry_after", None)
            if retry_after:
                minutes = max(1, round(retry_after / 60))
                self.locked_message = (
                    f"Too many failed sign-ins for this username; try again in {minutes} minutes."
                )
                raise ValidationError(self.locked_message, code="locked") from None
            raise
