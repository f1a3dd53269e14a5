"""The load test: the sweep, its plots and the other measurements (python -m loadtest.X); see README.md."""
