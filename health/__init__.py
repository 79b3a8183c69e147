"""Health scoring: scorecards, the metric library, scores and their explanations."""
