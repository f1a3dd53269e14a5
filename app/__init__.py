"""fastText review-rating inference worker (Falcon 4 on bjoern)."""
