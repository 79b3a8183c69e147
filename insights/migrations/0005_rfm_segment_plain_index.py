"""The RFM segment's plain index, without the pattern-ops (LIKE) index ``db_index`` adds on
PostgreSQL, which nothing read."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0010_account_indexes_only_used'),
        ('insights', '0004_recency_derived_when_read'),
    ]

    operations = [
        migrations.AlterField(
            model_name='accountvalue',
            name='rfm_segment',
            field=models.CharField(blank=True, choices=[('champions', 'Champions'), ('loyal', 'Loyal'), ('potential_loyalists', 'Potential loyalists'), ('new', 'New'), ('at_risk', 'At risk'), ('cant_lose', "Can't lose them"), ('hibernating', 'Hibernating'), ('lost', 'Lost')], max_length=20),
        ),
        migrations.AddIndex(
            model_name='accountvalue',
            index=models.Index(fields=['rfm_segment'], name='accountvalue_rfm_segment_idx'),
        ),
    ]
