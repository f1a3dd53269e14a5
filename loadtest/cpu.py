"""CPU time of the processes behind a target, for CPU-per-request figures.

A group is named `<target>-<part>` (bjoern-workers, bjoern-nginx) and lists
containers by id, read from the host's cgroup tree (mounted read-only at
CGROUP_ROOT, default /host/cgroup, else /sys/fs/cgroup), or processes as
`pid:N` (the local stack), read from /proc:

    CPU_GROUPS="bjoern-workers=3f2a...,9c1b... bjoern-nginx=77e0..."

Docker keeps a container's CPU time in its cgroup: cgroup v1 `cpuacct.usage`
(ns) or cgroup v2 `cpu.stat` usage_usec, at a path that depends on the cgroup
driver; every layout Docker uses is tried.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cgroup_root() -> Path:
    env = os.environ.get("CGROUP_ROOT")
    if env:
        return Path(env)
    host = Path("/host/cgroup")
    return host if host.is_dir() else Path("/sys/fs/cgroup")


def parse_groups(text: str) -> dict[str, list[str]]:
    groups = {}
    for item in re.split(r"\s+", text.strip()):
        if not item:
            continue
        name, sep, ids = item.partition("=")
        if not sep or "-" not in name:
            raise SystemExit(f"bad CPU group {item!r}: want <target>-<part>=id,id")
        groups[name] = [i for i in ids.split(",") if i]
    return groups


def parts_of(groups: dict[str, list[str]], target: str) -> dict[str, list[str]]:
    """`target`'s groups by part: {"workers": [...], "nginx": [...]}. The part is
    the name's last word, so a target's name may hold dashes (rust-direct-workers)."""
    return {name.rpartition("-")[2]: ids for name, ids in groups.items()
            if name.rpartition("-")[0] == target}


def _container_s(root: Path, cid: str) -> float | None:
    v1 = [f"cpuacct/docker/{cid}", f"cpu,cpuacct/docker/{cid}",
          f"cpuacct/system.slice/docker-{cid}.scope", f"cpu,cpuacct/system.slice/docker-{cid}.scope"]
    for rel in v1:
        f = root / rel / "cpuacct.usage"
        if f.is_file():
            return int(f.read_text()) / 1e9
    for rel in (f"system.slice/docker-{cid}.scope", f"docker/{cid}"):
        f = root / rel / "cpu.stat"
        if f.is_file():
            for line in f.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    return None


def _pid_s(pid: str) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def usage_s(ids: list[str]) -> float | None:
    """CPU seconds used so far by all of `ids`; None if any cannot be read."""
    root, total = cgroup_root(), 0.0
    for i in ids:
        s = _pid_s(i[4:]) if i.startswith("pid:") else _container_s(root, i)
        if s is None:
            return None
        total += s
    return total
