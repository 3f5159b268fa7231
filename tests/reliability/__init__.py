"""Reliability suite (issue 9): fault scenarios under load with an accounting invariant, bad-input fuzzing,
forgery and secrets checks. ``pytest -m reliability`` runs it alone; ``make test`` runs it with the rest."""
