"""The model: fetch and verify it (python -m models.fetch), train your own (python -m models.train)."""
