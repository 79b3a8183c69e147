from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_eventdaily_fillfactor"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="health_band_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
