"""Lifecycle journeys: stages, milestones, transitions (see DESIGN.md)."""
