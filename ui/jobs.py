"""Jobs: `workbench train` (or `pretrain`, `pseudolabel`) in a process that outlives the page.

A job is the very command the CLI runs, started in its own session (process group) with its
output going to a log file. Everything about it is on disk, so a reloaded page, another
browser or a restarted UI finds it again::

    <workspace>/jobs/<job-id>/
      job.json      pid, command, start time, the run it created, how it ended
      train.log     what the command printed (the error message if it failed)

The run folder is made by `workbench train` itself (``workbench.run.new_run``); a job claims
the run its process holds the workspace's training lock for, or else the first run whose name
is not older than the job and that no other job claimed. Progress is read from that run
(``workbench.run.Run``). One training at a time per workspace: a start is refused while a page
job or any other process (the command line) is training there.

The untranscribed-audio step's work runs the same way, as jobs of another ``kind``: a
``pretrain`` job claims the pretraining run folder (``WS/pretrain/<stamp>-<base>``) it made; a
``pseudolabel`` job is given the name of the set it writes. A page job of any kind holds the
workspace: on a laptop's few cores two heavy jobs at once would each take twice as long.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.fsio import write_json_atomic
from workbench.run import busy_error, find_run, list_runs, training_now
from workbench.workspace import STAMP, Workspace, new_stamped_dir

JOBS_DIR = "jobs"
JOB_FILE = "job.json"
LOG_FILE = "train.log"
CLOCK_SLACK_S = 2.0  # a run named up to this long before the job's start is still its own
STOP_GRACE_S = 20.0  # after SIGINT, wait this long for a clean exit before SIGTERM
KILL_GRACE_S = 5.0  # after SIGTERM, wait this long before SIGKILL
LOG_TAIL_LINES = 15
START_LOCK_S = 10.0  # a start lock older than this was left behind by a crash

TRAIN, PRETRAIN, PSEUDOLABEL = "train", "pretrain", "pseudolabel"  # kinds of job
KIND_WORDS = {TRAIN: "trained", PRETRAIN: "pretrained", PSEUDOLABEL: "pseudo-labelled"}

# Job states, as shown in the page.
STARTING = "starting"  # process alive, run directory not made yet (loading the model)
RUNNING = "running"
FINISHED = "finished"
STOPPED = "stopped"
FAILED = "failed"
ACTIVE = (STARTING, RUNNING)


@dataclass
class Job:
    """One training process, as recorded in ``job.json``.

    Attributes:
        id: Folder name under ``<workspace>/jobs``.
        pid: Process id (also the process group id: the job leads its own session).
        command: The argv it runs.
        started: Unix time the process was started.
        run: The run directory name it trains ("" until it is made); for a pretrain job its
            pretraining run, for a pseudolabel job the set it writes.
        returncode: Exit status once known (None while running, or when another UI
            process started it and it ended unseen).
        stopped: The user asked it to stop.
        kind: :data:`TRAIN`, :data:`PRETRAIN` or :data:`PSEUDOLABEL`.
    """

    id: str
    pid: int
    command: list[str]
    started: float
    run: str = ""
    returncode: int | None = None
    stopped: bool = False
    kind: str = TRAIN

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobStatus:
    """A job and where it stands now."""

    job: Job
    state: str
    log_tail: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


# --------------------------------------------------------------------------- commands


def train_command(ws: Workspace, *, model: str, preset: str, overrides: list[str]) -> list[str]:
    """The `workbench train` argv for a new run (the same command the CLI user types)."""
    return [sys.executable, "-m", "workbench.cli", "train", "-w", str(ws.root), "--quiet",
            "--json", "--model", model, "--preset", preset, *overrides]


def resume_command(ws: Workspace, run: str) -> list[str]:
    """The `workbench train --resume` argv that continues ``run``."""
    return [sys.executable, "-m", "workbench.cli", "train", "-w", str(ws.root), "--quiet",
            "--json", "--resume", "--run", run]


def pretrain_command(ws: Workspace, *, model: str = "", steps: int = 0, resume: str = "",
                     settings: list[str] = ()) -> list[str]:
    """The `workbench pretrain` argv: a new run of ``model``, or ``--resume`` of a run."""
    command = [sys.executable, "-m", "workbench.cli", "pretrain", "-w", str(ws.root),
               "--quiet", "--json"]
    if resume:
        return [*command, "--resume", resume]
    return [*command, "--model", model, *(["--steps", str(steps)] if steps else []),
            *settings]


def pseudolabel_command(ws: Workspace, *, run: str, name: str, lm: str = "",
                        threshold: float | None = None) -> list[str]:
    """The `workbench pseudolabel` argv."""
    return [sys.executable, "-m", "workbench.cli", "pseudolabel", "-w", str(ws.root),
            "--quiet", "--json", "--run", run, "--name", name, *(["--lm", lm] if lm else []),
            *(["--threshold", str(threshold)] if threshold is not None else [])]


# --------------------------------------------------------------------------- start, stop


def jobs_dir(ws: Workspace) -> Path:
    return ws.root / JOBS_DIR


def start_job(ws: Workspace, command: list[str], *, run: str = "", kind: str = TRAIN) -> Job:
    """Start ``command`` as a detached job of ``ws``; one job per workspace.

    Args:
        ws: The workspace.
        command: The argv (see :func:`train_command`).
        run: The run it trains, when known in advance (resuming; a pseudo-label set's name).
        kind: What the command does (:data:`TRAIN`, :data:`PRETRAIN`, :data:`PSEUDOLABEL`).

    Raises:
        WorkbenchError: A job of this page, or another process (`workbench train` on the
            command line), is training in this workspace; the message names the run.
    """
    with _start_lock(ws):
        refuse_if_training(ws)
        return _launch(ws, command, run, kind)


def refuse_if_training(ws: Workspace) -> None:
    """Raise when something trains in ``ws`` now: a page job or any holder of its lock.

    Raises:
        WorkbenchError: The message names the run being trained (see
            :func:`workbench.run.busy_error`).
    """
    if training_now(ws) is not None:
        raise busy_error(ws)
    current = active_job(ws, kind=None)
    if current is None:
        return
    if current.job.kind != TRAIN:
        what = {PRETRAIN: "Pretraining", PSEUDOLABEL: "Pseudo-labelling"}[current.job.kind]
        raise WorkbenchError(
            f"{what} runs in workspace {ws.root.name} (job {current.job.id}"
            + (f", {current.job.run}" if current.job.run else "") + "). One job at a time "
            "per workspace: wait for it to finish or stop it in step 9, Untranscribed audio, "
            "then start again.")
    run = current.job.run or "(a new run, still loading)"  # not holding the lock yet
    raise WorkbenchError(
        f"Run {run} is being trained in workspace {ws.root.name} (job {current.job.id}). "
        "One training at a time per workspace: wait for it to finish or stop it, then "
        "start again (or train in another workspace).")


@contextmanager
def _start_lock(ws: Workspace) -> Iterator[None]:
    """Two sessions pressing Start at once: the second waits, then finds the first job."""
    lock = jobs_dir(ws) / ".starting"
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + START_LOCK_S
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.monotonic() > deadline:  # left behind by a crash: take it over
                lock.unlink(missing_ok=True)
            time.sleep(0.1)
    try:
        yield
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def _launch(ws: Workspace, command: list[str], run: str, kind: str) -> Job:
    folder = _new_job_dir(ws)
    # WORKBENCH_JOB: the job takes SIGINT as a clean stop even when the UI was started with
    # SIGINT ignored (`workbench ui &` from a script), which its children would inherit.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORKBENCH_JOB": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_project_root()),
                                                    env.get("PYTHONPATH", "")) if p)
    started = time.time()
    with open(folder / LOG_FILE, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=ws.root, env=env,
                                   start_new_session=True)
    job = Job(folder.name, process.pid, list(command), started, run=run, kind=kind)
    _save(ws, job)
    return job


def stop_job(ws: Workspace, job_id: str, *, grace: float = STOP_GRACE_S,
             kill_grace: float = KILL_GRACE_S) -> JobStatus:
    """Stop a job: SIGINT (a clean stop, resumable), then SIGTERM, then SIGKILL.

    The signals go to the job's process group, so anything it started stops too. Training
    resumes from the last checkpoint (saved at every dev evaluation).

    Raises:
        WorkbenchError: There is no such job, or it is not running.
    """
    job = load_job(ws, job_id)
    if not _alive(ws, job):
        raise WorkbenchError(f"Job {job_id} is not running; there is nothing to stop.")
    job = replace(job, stopped=True)
    _save(ws, job)
    steps = [(signal.SIGTERM, kill_grace), (signal.SIGKILL, kill_grace)]
    if not _ignores_sigint(job.pid):  # a UI started in the background passes SIGINT ignored
        steps.insert(0, (signal.SIGINT, grace))
    for sig, wait in steps:
        _signal_group(job.pid, sig)
        if _wait_until_dead(ws, job, wait):
            break
    return job_status(ws, job.id)


def _ignores_sigint(pid: int) -> bool:
    """Whether the process ignores SIGINT (read from /proc; False where there is none)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _wait_until_dead(ws: Workspace, job: Job, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(ws, job):
            return True
        time.sleep(0.2)
    return not _alive(ws, job)


# --------------------------------------------------------------------------- status


def load_job(ws: Workspace, job_id: str) -> Job:
    """The recorded job ``job_id``.

    Raises:
        WorkbenchError: No such job (or an unreadable record).
    """
    path = jobs_dir(ws) / Path(job_id).name / JOB_FILE
    try:
        return Job.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as err:
        raise WorkbenchError(f"There is no readable training job {job_id!r} in "
                             f"{jobs_dir(ws)}.") from err


def list_jobs(ws: Workspace) -> list[Job]:
    """Every recorded job of the workspace, oldest first (unreadable records skipped)."""
    folder = jobs_dir(ws)
    if not folder.is_dir():
        return []
    jobs = []
    for path in sorted(folder.glob(f"*/{JOB_FILE}")):
        try:
            jobs.append(Job.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return jobs


def job_status(ws: Workspace, job_id: str) -> JobStatus:
    """Where job ``job_id`` stands, claiming its run directory once it exists."""
    job = load_job(ws, job_id)
    alive = _alive(ws, job)
    job = load_job(ws, job_id)  # _alive may have recorded the exit status
    if not job.run and job.kind != PSEUDOLABEL:
        run = _claim_run(ws, job)
        if run:
            job = replace(job, run=run)
            _save(ws, job)
    return JobStatus(job, _state(ws, job, alive), log_tail(ws, job))


def active_job(ws: Workspace, kind: str | None = TRAIN) -> JobStatus | None:
    """The job of this workspace (of ``kind``; None: any) still running (the newest), or
    None."""
    for job in reversed(list_jobs(ws)):
        if (kind is None or job.kind == kind) and job.returncode is None and _alive(ws, job):
            return job_status(ws, job.id)
    return None


def latest_job(ws: Workspace, kind: str) -> JobStatus | None:
    """The newest job of ``kind`` (running or ended), or None."""
    for job in reversed(list_jobs(ws)):
        if job.kind == kind:
            return job_status(ws, job.id)
    return None


def job_for_run(ws: Workspace, run: str) -> JobStatus | None:
    """The newest job that trained ``run`` (None for runs started on the command line)."""
    for job in reversed(list_jobs(ws)):
        if job.run == run and job.kind == TRAIN:
            return job_status(ws, job.id)
    return None


def _state(ws: Workspace, job: Job, alive: bool) -> str:
    if alive:
        return RUNNING if job.run or job.kind == PSEUDOLABEL else STARTING
    if job.stopped:
        return STOPPED
    if job.kind != TRAIN:
        return FINISHED if job.returncode == 0 else FAILED
    if job.returncode in (0, None) and _run_finished(ws, job.run):
        return FINISHED
    return FAILED


def _run_finished(ws: Workspace, run: str) -> bool:
    if not run:
        return False
    try:
        return find_run(ws, run, allow_path=False).finished
    except WorkbenchError:  # the run folder was deleted
        return False


def log_tail(ws: Workspace, job: Job, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines the job printed."""
    path = jobs_dir(ws) / job.id / LOG_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _claim_run(ws: Workspace, job: Job) -> str:
    """The run this job trains: the one its process holds the training lock for, or else the
    first run not older than the job that no other job claimed (a pretrain job: the first
    such pretraining run)."""
    if job.kind == TRAIN:
        holder = training_now(ws)
        if holder and holder.get("pid") == job.pid and holder.get("run"):
            return str(holder["run"])
        names = [run.name for run in list_runs(ws)]
    else:
        from workbench.pretrain import list_pretraining_runs

        names = [run.name for run in list_pretraining_runs(ws)]
    claimed = {other.run for other in list_jobs(ws)
               if other.id != job.id and other.run and other.kind == job.kind}
    for name in names:
        made = _run_time(name)
        if made is not None and made >= job.started - CLOCK_SLACK_S and name not in claimed:
            return name
    return ""


def _run_time(name: str) -> float | None:
    """Unix time from a run name ``YYYYmmdd-HHMMSS-<model>`` (None for other names)."""
    try:
        stamp = datetime.strptime(name[:15], STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return stamp.timestamp()


# --------------------------------------------------------------------------- processes


def _alive(ws: Workspace, job: Job) -> bool:
    """Whether the job's process still runs; records its exit status when we can see it."""
    if job.returncode is not None:
        return False
    try:
        pid, status = os.waitpid(job.pid, os.WNOHANG)  # reaps it if it is our child
    except ChildProcessError:
        return _foreign_alive(job)  # started by an earlier UI process, or already reaped
    if pid == 0:
        return True
    _save(ws, replace(job, returncode=os.waitstatus_to_exitcode(status)))
    return False


def _foreign_alive(job: Job) -> bool:
    """Whether a process that is not our child is alive and is still this job."""
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: the pid was reused
    proc = Path("/proc") / str(job.pid)
    if not proc.is_dir():
        return True  # no /proc to check against (macOS): trust the pid
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    return [part.decode(errors="replace") for part in cmdline if part] == job.command


# --------------------------------------------------------------------------- storage


def _save(ws: Workspace, job: Job) -> None:
    write_json_atomic(jobs_dir(ws) / job.id / JOB_FILE, asdict(job))


def _new_job_dir(ws: Workspace) -> Path:
    return new_stamped_dir(jobs_dir(ws))


def _project_root() -> Path:
    """The folder holding the ``workbench`` package, so the job imports the same code."""
    import workbench

    return Path(workbench.__file__).resolve().parent.parent

