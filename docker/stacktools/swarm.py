"""docker-compose.yml, as Docker Swarm's `docker stack deploy` takes it.

    docker compose config --format json | python3 -m stacktools.swarm > stack.yml
    docker stack deploy -c stack.yml reviewrating

The compose file is the one source; this only translates what Swarm reads
differently, because the stack loader of Docker Engine (20.10 here) speaks
the older Compose v3 format: `depends_on` with conditions, `build`,
`restart` and `security_opt` are refused or ignored there, `tmpfs` becomes a
tmpfs mount, networks become overlays, and `deploy` gains what Swarm acts on:
rolling updates one task at a time (the new one started and healthy first,
rolled back if it fails), restart whenever a task ends, and `endpoint_mode: dnsrr` for
the workers, so the name `worker` resolves to every task as nginx needs
(Swarm's default is one virtual IP, which nginx's keep-alive connections
would pin to one task).

nginx runs on every node (`mode: global`) and publishes 9000 on its node
itself (`mode: host`), on all the node's addresses: Swarm cannot bind a
published port to 127.0.0.1 as Compose does, and its routing mesh would
only put a second load balancer in front of nginx. Workers may run on any node; each nginx reaches
them all over the overlay network.

Compose puts nginx on the host's network and the workers on none, talking
over unix sockets in a shared tmpfs volume (loadtest/RESULTS.md, "The
container path"). A volume is local to a node and workers may run on any, so
the stack keeps the network layout: workers on TCP :8000 on an internal
overlay network (`backend`) that only nginx shares, found by DNS, and nginx
publishing 9000 from its own network (`frontend`).

Standard library only (JSON in, JSON out: YAML's superset, which
`docker stack deploy` reads).
"""

import json
import sys

DROP = {"build", "depends_on", "restart", "security_opt", "profiles", "tmpfs", "container_name",
        "network_mode", "group_add", "extra_hosts", "mem_limit", "pids_limit"}
# Compose's same-host wiring, replaced by the network layout above.
NGINX_ENV_DROP = {"WORKER_SOCKETS", "NGINX_LISTEN_ADDR", "NGINX_STATUS_ADDR"}


def rolling(order: str) -> dict:
    return {"parallelism": 1, "order": order, "delay": "2s", "monitor": "10s",
            "failure_action": "rollback"}


def networked(svc: dict, out: dict) -> None:
    """Workers on unix sockets -> TCP on `backend`; nginx finding sockets -> DNS, publishing 9000."""
    env = dict(svc.get("environment") or {})
    volumes = {m["source"] for m in svc.get("volumes", []) if isinstance(m, dict) and m.get("type") == "volume"}
    if str(env.get("HOST", "")).startswith("unix:"):
        out["environment"] = env | {"HOST": "0.0.0.0", "PORT": "8000"}
        out["networks"] = ["backend"]
    elif "WORKER_SOCKETS" in env:
        out["environment"] = {k: v for k, v in env.items() if k not in NGINX_ENV_DROP}
        out["networks"] = ["frontend", "backend"]
        out["ports"] = [{"target": 9000, "published": 9000, "protocol": "tcp", "mode": "host"}]
    else:
        return
    kept = [m for m in svc.get("volumes", []) if not (isinstance(m, dict) and m.get("source") in volumes)]
    out.pop("volumes", None)
    if kept:
        out["volumes"] = kept


def service(name: str, svc: dict) -> dict:
    out = {k: v for k, v in svc.items() if k not in DROP and v is not None}
    networked(svc, out)
    if svc.get("tmpfs"):
        out["volumes"] = [*out.get("volumes", []), *({"type": "tmpfs", "target": t} for t in svc["tmpfs"])]
    if "ports" in out:
        out["ports"] = [{k: v for k, v in p.items() if k != "host_ip"}
                        | {"published": int(p["published"]), "mode": "host"} for p in out["ports"]]
    if isinstance(out.get("networks"), dict):
        out["networks"] = sorted(out["networks"])
    deploy = dict(out.get("deploy") or {})
    # Swarm (v3) takes the memory limit under deploy; its stack loader has no
    # pids limit (Docker 20.10), so the containers there have none.
    if svc.get("mem_limit"):
        deploy["resources"] = {"limits": {"memory": f"{int(svc['mem_limit'])}b"}}
    if name == "nginx":
        deploy = {k: v for k, v in deploy.items() if k != "replicas"} | {"mode": "global"}
    else:
        deploy.setdefault("replicas", 1)
    # `any`: a worker that drained after a stray SIGTERM exits 0 and must come back too.
    deploy["restart_policy"] = {"condition": "any", "delay": "1s"}
    # Workers: start the new task first, so capacity never drops during an update.
    deploy["update_config"] = rolling("start-first" if name == "worker" else "stop-first")
    deploy["rollback_config"] = {"parallelism": 1, "order": deploy["update_config"]["order"]}
    if name == "worker":
        deploy["endpoint_mode"] = "dnsrr"
    out["deploy"] = deploy
    return out


def stack(config: dict) -> dict:
    # Workers are reachable only from nginx, and reach nothing outside.
    networks = {"backend": {"driver": "overlay", "internal": True}, "frontend": {"driver": "overlay"}}
    for name, net in (config.get("networks") or {}).items():
        networks[name] = {"driver": "overlay", **({"internal": True} if net.get("internal") else {})}
    return {
        "version": "3.8",
        "services": {name: service(name, svc) for name, svc in config["services"].items()},
        "networks": networks,
    }


if __name__ == "__main__":
    json.dump(stack(json.load(sys.stdin)), sys.stdout, indent=1)
    sys.stdout.write("\n")
