"""The benchmark's sampler: a process tree's CPU seconds, summed RSS and spill-directory bytes, per interval and per
Airflow task instance (from the process titles LocalExecutor gives its workers), around one command."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from cxw.config import REPO_ROOT


# ---------------------------------------------------------------------------------------------------------------
# Process sampling
# ---------------------------------------------------------------------------------------------------------------

def _dir_bytes(d: Path) -> int:
    total = 0
    try:
        for root, _, files in os.walk(d):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_size
                except OSError:
                    pass
    except OSError:
        pass
    return total


_TASK_TITLE = re.compile(r"airflow worker -- (?:\S+: )?([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})")


def _task_owner(title: str) -> str | None:
    """The task-instance id (32 hex digits) a LocalExecutor process works for, from its process title: the
    supervisor is titled ``airflow worker -- LocalExecutor: <ti id>``, the task runner ``airflow worker -- <ti id>``."""
    m = _TASK_TITLE.search(title)
    return m.group(1).replace("-", "") if m else None


class Sampler(threading.Thread):
    """Samples process trees: per-interval CPU seconds (all processes), summed RSS, spill-directory bytes, and,
    where a process (or an ancestor) is titled by Airflow for a task instance, the same per task instance."""

    def __init__(self, pid: int, spill_dirs: list[Path], interval: float = 0.2, extra_pids: tuple[int, ...] = ()):
        super().__init__(daemon=True)
        import psutil

        self.roots = [psutil.Process(pid)] + [psutil.Process(x) for x in extra_pids]
        self.spill_dirs = spill_dirs
        self.interval = interval
        # t, cpu delta, rss sum, spill bytes, n procs, {ti id: [cpu delta, rss]}
        self.samples: list[tuple[float, float, int, int, int, dict]] = []
        self._cpu: dict[tuple[int, float], float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            t = time.time()
            procs = []
            for root in self.roots:
                try:
                    procs += [root] + root.children(recursive=True)
                except psutil.Error:
                    continue
            if not procs:
                break
            delta, rss, n = 0.0, 0, 0
            seen: dict[int, tuple[int, str | None, float, int]] = {}  # pid -> ppid, own title owner, cpu, rss
            for p in procs:
                try:
                    with p.oneshot():
                        ct = p.cpu_times()
                        key = (p.pid, p.create_time())
                        c = ct.user + ct.system
                        r = p.memory_info().rss
                        ppid = p.ppid()
                        owner = _task_owner(" ".join(p.cmdline()))
                except psutil.Error:
                    continue
                d = c - self._cpu.get(key, 0.0)
                self._cpu[key] = c
                delta += d
                rss += r
                n += 1
                seen[p.pid] = (ppid, owner, d, r)
            per_task: dict[str, list] = {}
            for pid, (ppid, owner, d, r) in seen.items():
                hops = 0
                while owner is None and ppid in seen and hops < 16:  # a task's children (dbt) belong to it
                    ppid, owner = seen[ppid][0], seen[ppid][1]
                    hops += 1
                if owner is not None:
                    acc = per_task.setdefault(owner, [0.0, 0])
                    acc[0] += d
                    acc[1] += r
            spill = sum(_dir_bytes(d) for d in self.spill_dirs)
            self.samples.append((t, delta, rss, spill, n, per_task))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def attribute(self, stages: dict[str, tuple[float, float]], ti_ids: dict[str, str] | None = None
                  ) -> dict[str, dict]:
        """CPU seconds, peak RSS and peak spill per stage.

        With ``ti_ids`` (task id -> task-instance id; tasks ran in executor processes): a stage gets the CPU and the
        peak summed RSS of its own processes (supervisor, task runner and their children); CPU of the other processes
        (the `dags test` loop, idle workers, the API server) goes to '(outside tasks)'. Without: tasks ran inside the
        sampled process one at a time, so a stage gets everything sampled between its start and end, and the
        peak summed RSS of all processes then. Spill is by time in both cases."""
        out: dict[str, dict] = {k: {"cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_spill_bytes": 0} for k in stages}
        out["(outside tasks)"] = {"cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_spill_bytes": 0}
        by_ti = {v: k for k, v in (ti_ids or {}).items() if k in out}
        for t, cpu, rss, spill, _, per_task in self.samples:
            mid = t - self.interval / 2
            hit = [k for k, (a, b) in stages.items() if a <= mid <= b] or ["(outside tasks)"]
            for k in hit:
                out[k]["peak_spill_bytes"] = max(out[k]["peak_spill_bytes"], spill)
            if ti_ids:
                owned = 0.0
                for ti, (c, r) in per_task.items():
                    k = by_ti.get(ti)
                    if k is None:
                        continue
                    owned += c
                    out[k]["cpu_s"] += c
                    out[k]["peak_rss_mb"] = max(out[k]["peak_rss_mb"], r / 2**20)
                out["(outside tasks)"]["cpu_s"] += cpu - owned
                continue
            for k in hit:
                o = out[k]
                o["cpu_s"] += cpu / len(hit)
                o["peak_rss_mb"] = max(o["peak_rss_mb"], rss / 2**20)
        for o in out.values():
            o["cpu_s"] = round(o["cpu_s"], 2)
            o["peak_rss_mb"] = round(o["peak_rss_mb"], 1)
        return out

    def totals(self) -> dict:
        return {"cpu_s_sampled": round(sum(s[1] for s in self.samples), 2),
                "peak_rss_mb": round(max((s[2] for s in self.samples), default=0) / 2**20, 1),
                "peak_spill_bytes": max((s[3] for s in self.samples), default=0),
                "max_processes": max((s[4] for s in self.samples), default=0), "samples": len(self.samples)}


def run_sampled(cmd: list[str], env: dict, log_file: Path, spill_dirs: list[Path], cwd=None,
                extra_pids: tuple[int, ...] = (), finished=None, grace_s: float = 20.0) -> dict:
    """Run ``cmd`` sampled. ``finished``: a callable that says whether the work is done; if the process is still
    there ``grace_s`` after that, its process group is terminated (``terminated_after_finish``). `airflow dags test
    --use-executor` can hang in LocalExecutor.end() after its run has finished: one worker never gets its poison
    pill (seen here about once in ten runs)."""
    import resource
    import signal

    log_file.parent.mkdir(parents=True, exist_ok=True)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    done_at, terminated = None, False
    with log_file.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd or REPO_ROOT,
                                start_new_session=finished is not None)
        sampler = Sampler(proc.pid, spill_dirs, extra_pids=extra_pids)
        sampler.start()
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if finished is None:
                    continue
                if done_at is None:
                    done_at = time.time() if finished() else None
                elif time.time() - done_at > grace_s:
                    terminated = True
                    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 30)):
                        try:
                            os.killpg(proc.pid, sig)
                        except ProcessLookupError:
                            pass
                        try:
                            proc.wait(wait_s)
                            break
                        except subprocess.TimeoutExpired:
                            continue
                    rc = proc.wait()
                    fh.write(f"\nbench: terminated `{' '.join(cmd[1:4])}` {grace_s:.0f} s after its run had finished "
                             f"(it did not exit by itself)\n")
                    break
        sampler.stop()
    t1 = time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": rc, "t0": t0, "t1": t1, "wall_s": round(t1 - t0, 3), "terminated_after_finish": terminated,
            "cpu_s_rusage": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2),
            "max_single_rss_mb_rusage": round(ru1.ru_maxrss / 1024, 1), "sampler": sampler}


