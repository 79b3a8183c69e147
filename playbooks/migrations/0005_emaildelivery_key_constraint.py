"""The outbox key unique by a constraint: the same unique index, without the pattern-ops (LIKE)
index ``unique=True`` adds on PostgreSQL, which nothing read."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('playbooks', '0004_email_due_index_with_id'),
    ]

    operations = [
        migrations.AlterField(
            model_name='emaildelivery',
            name='key',
            field=models.CharField(help_text='What this email is; never twice.', max_length=200),
        ),
        migrations.AddConstraint(
            model_name='emaildelivery',
            constraint=models.UniqueConstraint(fields=('key',), name='emaildelivery_key_unique'),
        ),
    ]
