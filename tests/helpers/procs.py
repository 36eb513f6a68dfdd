"""A process and the processes below it, read from /proc: the app's figures include its edit
processes (and multiprocessing's resource tracker), which do the client's work."""

from __future__ import annotations

import os
from pathlib import Path


def family(pid: int) -> list[int]:
    """`pid` and every process below it, `pid` first."""
    below: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            below.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop(0))
        todo.extend(below.get(found[-1], []))
    return found


def status_total(pid: int, field_name: str) -> int:
    """A byte count of /proc status (VmRSS: now; VmHWM: each one's peak since its reset), summed over
    the family: for VmHWM an upper bound, as the peaks need not have come at once."""
    total = 0
    for member in family(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) * 1024 for line in lines if line.startswith(field_name + ":"))
    return total


def reset_peaks(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of every process of the family to its current RSS; False when
    that was not allowed for one of them (its peak then counts from its start)."""
    done = True
    for member in family(pid):
        try:
            Path(f"/proc/{member}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def cpu_seconds(pid: int) -> float:
    """User and system CPU the family has used so far."""
    ticks = 0
    for member in family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
