"""The insights triggers (segment_entered, no_survey_in) among the choices of a playbook's trigger.

``playbooks.Playbook.trigger`` lists them (playbooks/models.py, ``Trigger``), and the state of
that field is recorded here rather than by a migration of the playbooks app, so that this app
owns all its migrations. Choices live in Python only: the operation runs no SQL.
"""

from django.db import migrations, models


class AlterPlaybookTriggerChoices(migrations.AlterField):
    """An AlterField on ``playbooks.playbook`` recorded by a migration of another app."""

    def state_forwards(self, app_label, state):
        super().state_forwards("playbooks", state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        super().database_forwards("playbooks", schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        super().database_backwards("playbooks", schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_initial"),
        ("playbooks", "0002_default_playbooks"),
    ]

    operations = [
        AlterPlaybookTriggerChoices(
            model_name="playbook",
            name="trigger",
            field=models.CharField(choices=[('band_entered', 'Health band entered'), ('score_dropped', 'Score dropped by N points within D days'), ('stage_entered', 'Stage entered'), ('milestone_overdue', 'Milestone overdue'), ('renewal_within', 'Renewal within N days'), ('nps_detractor', 'NPS detractor answer'), ('inactivity', 'No activity for N days'), ('recurring_review', 'Recurring review every N days'), ('task_overdue', 'A task is overdue'), ('expansion_signal', 'Expansion signal (green and usage up)'), ('segment_entered', 'RFM segment entered'), ('no_survey_in', 'No NPS answer for N days')], max_length=32),
        ),
    ]
