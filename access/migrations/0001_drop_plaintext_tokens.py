"""DRF's authtoken kept API keys in plain text; they are dropped (every old token stops working).

Tokens are now django-rest-knox's: a digest and an expiry (docs/security.md).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", migrations.RunSQL.noop)]
