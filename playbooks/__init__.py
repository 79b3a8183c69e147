"""Playbooks: triggers, tasks, alerts and the email outbox; the scheduled pipeline."""
