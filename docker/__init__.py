"""Building and running the stack: the worker image, rollout, Swarm, the local stack (python -m docker.X).

A regular package, so it wins over the Docker SDK (`docker`) where that is installed."""
