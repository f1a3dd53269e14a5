"""fastText review-rating inference worker (Falcon 4 on bjoern)."""

__version__ = "1.0.0"  # the service's (pyproject.toml reads it; GET /v2 says it)
