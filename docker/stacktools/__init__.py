"""The tools that run the stack: `localstack` (the topology without Docker:
`make local-up`), `ready` (waiting for a server, stdlib only: `make up`),
`swarm` (docker-compose.yml for `docker stack deploy`). Not named `docker`,
which is the Docker SDK's import name."""
