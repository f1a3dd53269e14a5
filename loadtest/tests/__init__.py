"""The load test's own tests: its modules on saved outputs, the generator against
real servers, and `make loadtest` end to end (slow)."""
