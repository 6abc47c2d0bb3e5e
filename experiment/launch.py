"""Many runs as cluster jobs, through submitit (the `slurm` extra): configs x seed blocks x study cells.

A run list is a JSON file:

    {"resources": {"timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 64,
                   "slurm_partition": "gpu"},
     "runs": [{"name": "ER", "script": "train_ER_DQN.py", "config": "configs/ER.json", "seed": 0, "jobs": 3},
              {"name": "PPO_cartpole", "script": "train_PPO.py", "config": "configs/ppo/CartPole.json",
               "resources": {"timeout_min": 60}}]}

Each run is its train script with its config and master seed (default 0). "jobs": k splits the config's num_seeds
into k blocks of equal size, each one job with --seed-offset (seeds 0..n-1, n..2n-1, ...: bit for bit the seeds of
one job of them all, docs/harness.md); the job's output is <dir>/<name>_seeds<first>-<last>, otherwise <dir>/<name>.
A run's "resources" update the list's; they are submitit's AutoExecutor parameters (timeout_min, mem_gb,
gpus_per_node, cpus_per_task, nodes, tasks_per_node, slurm_partition, slurm_*...). Jobs with the same resources go
to SLURM as one job array. study_jobs() builds the model-based study's cells as such runs.

Every job runs `python train_scripts/<script> --seed S [--seed-offset O] --config C --output O --no-progress
[--resume]`. A job whose .out is complete is skipped; one whose outputs exist but are incomplete (killed, timed out,
failed) is resumed from its checkpoint with --resume and refused without it. Each launch appends what it submitted
(job id, log paths) to <dir>/launch_record.json, so a later launch names the log of a run's last job when the run
is still incomplete, and a failure is reported by run with its log path.
"""
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys

from experiment import config as config_lib
from experiment import files, study

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS_DIR = os.path.join(REPO_ROOT, "train_scripts")
RECORD_NAME = "launch_record.json"
RUN_KEYS = {"name", "script", "config", "seed", "jobs", "resources"}


class LaunchError(ValueError):
    """A run list or a launch that cannot go ahead; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One process of one run: a train script, its config, master seed and seed block, and its output prefix."""
    name: str
    script: str
    config: str
    seed: int
    seed_offset: int | None
    output: str
    resources: dict

    def command(self, resume: bool) -> list[str]:
        offset = [] if self.seed_offset is None else ["--seed-offset", str(self.seed_offset)]
        return [sys.executable, os.path.join(SCRIPTS_DIR, self.script), "--seed", str(self.seed), *offset,
                "--config", self.config, "--output", self.output, "--no-progress"] + ["--resume"] * resume

    def state(self) -> str:
        """'complete', 'incomplete' (outputs of an unfinished run exist) or 'new'."""
        if files.run_complete(self.output):
            return "complete"
        return "incomplete" if files.Outputs(self.output).existing() else "new"


def _load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise LaunchError(f"run list '{path}' not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LaunchError(f"cannot read run list '{path}': {e}") from None


def _split(run: dict, where: str, output_dir: str, resources: dict) -> list[Job]:
    """A run of the list -> its jobs (one per seed block)."""
    unknown = sorted(set(run) - RUN_KEYS)
    if unknown:
        raise LaunchError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(RUN_KEYS))})")
    for key in ("name", "script", "config"):
        if not isinstance(run.get(key), str) or not run[key]:
            raise LaunchError(f"{where}: '{key}' must be a non-empty string")
    name, script, config_path = run["name"], run["script"], run["config"]
    if os.sep in name or name.startswith("."):
        raise LaunchError(f"{where}: name '{name}' must be a plain file name (it names the outputs)")
    if not os.path.isfile(os.path.join(SCRIPTS_DIR, script)) or not script.startswith("train_"):
        known = sorted(f for f in os.listdir(SCRIPTS_DIR) if f.startswith("train_"))
        raise LaunchError(f"{where}: unknown script '{script}' (one of {', '.join(known)})")
    seed, jobs = run.get("seed", 0), run.get("jobs", 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise LaunchError(f"{where}: 'seed' must be an integer, got {seed!r}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise LaunchError(f"{where}: 'jobs' must be an integer >= 1, got {jobs!r}")
    if not isinstance(run.get("resources", {}), dict):
        raise LaunchError(f"{where}: 'resources' must be an object")
    try:
        num_seeds = config_lib.load_json(config_path).get("num_seeds")
    except config_lib.ConfigError as e:
        raise LaunchError(f"{where}: {e}") from None
    resources = {**resources, **run.get("resources", {})}
    if jobs == 1:
        return [Job(name, script, config_path, seed, None, os.path.join(output_dir, name), resources)]
    if not isinstance(num_seeds, int) or num_seeds % jobs:
        raise LaunchError(f"{where}: 'jobs' {jobs} must divide the config's num_seeds ({num_seeds!r})")
    block = num_seeds // jobs
    derived = os.path.join(output_dir, "configs", f"{name}_{block}_seeds.json")  # the config, num_seeds = block
    config = config_lib.load_json(config_path)
    files.atomic_write(derived, lambda f: f.write(json.dumps(dict(config, num_seeds=block), indent=1).encode()))
    return [Job(f"{name}_seeds{first}-{first + block - 1}", script, derived, seed, first,
                os.path.join(output_dir, f"{name}_seeds{first}-{first + block - 1}"), resources)
            for first in range(0, num_seeds, block)]


def read_run_list(path: str, output_dir: str) -> list[Job]:
    """The jobs of a run list file (derived configs of split runs are written under <output_dir>/configs/)."""
    listed = _load(path)
    if not isinstance(listed, dict) or not isinstance(listed.get("runs"), list) or not listed["runs"]:
        raise LaunchError(f"run list '{path}' must be an object with a non-empty list 'runs'")
    unknown = sorted(set(listed) - {"runs", "resources"})
    if unknown:
        raise LaunchError(f"run list '{path}': unknown key(s) {', '.join(unknown)} (known: resources, runs)")
    resources = listed.get("resources", {})
    if not isinstance(resources, dict):
        raise LaunchError(f"run list '{path}': 'resources' must be an object")
    jobs = []
    for index, run in enumerate(listed["runs"]):
        if not isinstance(run, dict):
            raise LaunchError(f"run list '{path}': run {index} must be an object")
        jobs += _split(run, f"run list '{path}', run {index} ('{run.get('name')}')", output_dir, resources)
    names = [job.name for job in jobs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LaunchError(f"run list '{path}': two runs write the same output(s): {', '.join(repeated)}")
    return jobs


def study_jobs(output_dir: str, agents, environments, regimes, seed: int = 0, jobs: int = 1,
               resources: dict | None = None) -> list[Job]:
    """The model-based study's cells (run_study.py's) as jobs, each cell's seeds split into `jobs` blocks."""
    out = []
    for agent, environment, regime in study.cells(agents, environments, regimes):
        run = {"name": study.cell_name(agent, environment, regime), "script": os.path.basename(study.train_script(agent)),
               "config": study.config_path(agent, environment, regime), "seed": seed, "jobs": jobs}
        out += _split(run, f"study cell {run['name']}", output_dir, resources or {})
    return out


# --- submitting --------------------------------------------------------------------------------------------------

def _record_path(output_dir: str) -> str:
    return os.path.join(output_dir, RECORD_NAME)


def read_record(output_dir: str) -> dict:
    """{job name: its last submission (job_id, stdout, stderr, command)} from earlier launches into output_dir."""
    path = _record_path(output_dir)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LaunchError(f"cannot read the launch record '{path}': {e}; move it away to launch afresh") from None


def _write_record(output_dir: str, record: dict) -> None:
    files.atomic_write(_record_path(output_dir), lambda f: f.write(json.dumps(record, indent=1).encode()))


def plan(jobs: list[Job], resume: bool, record: dict) -> tuple[list[Job], list[str]]:
    """(the jobs to submit, one line per job that is skipped or resumed). Incomplete outputs without --resume are
    refused, naming them and the log of the job that left them."""
    todo, lines, refused = [], [], []
    for job in jobs:
        state = job.state()
        last_log = record.get(job.name, {}).get("stderr")
        where = f" (last job's log: {last_log})" if last_log else ""
        if state == "complete":
            lines.append(f"{job.name}: complete, skipped")
        elif state == "incomplete" and not resume:
            refused.append(f"{job.name}{where}")
        else:
            if state == "incomplete":
                lines.append(f"{job.name}: incomplete{where}; resumed")
            todo.append(job)
    if refused:
        raise LaunchError(f"incomplete runs have outputs already: {'; '.join(refused)}; launch again with --resume to "
                          f"continue them")
    return todo, lines


def _executor(cluster: str, log_dir: str, resources: dict):
    try:
        import submitit
    except ImportError:
        raise LaunchError("launching needs submitit: pip install -e \".[slurm]\"") from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise LaunchError("no SLURM here (sbatch not found): run the jobs on this machine with --local, or print "
                          "them with --dry-run")
    executor = submitit.AutoExecutor(folder=os.path.join(log_dir, "%j"), cluster=cluster)
    try:
        executor.update_parameters(**resources)
    except (ValueError, TypeError, NameError) as e:
        raise LaunchError(f"resources {resources}: {e}") from None
    return executor


def submit(jobs: list[Job], output_dir: str, cluster: str, resume: bool, local_parallel: int = 1) -> dict:
    """Submit the jobs (SLURM: one array per distinct resources; local: `local_parallel` at a time, waiting) and
    record them. Returns {job name: submitit job}."""
    log_dir = os.path.join(output_dir, "logs")
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(json.dumps(job.resources, sort_keys=True), []).append(job)
    submitted, record = {}, read_record(output_dir)
    for group in groups.values():
        executor = _executor(cluster, log_dir, group[0].resources)
        waves = [group] if cluster == "slurm" else [group[i:i + local_parallel]
                                                    for i in range(0, len(group), local_parallel)]
        for wave in waves:
            calls = [functools.partial(subprocess.run, job.command(resume), check=True, cwd=REPO_ROOT)
                     for job in wave]
            with executor.batch():
                handles = [executor.submit(call) for call in calls]
            for job, handle in zip(wave, handles):
                submitted[job.name] = handle
                record[job.name] = {"job_id": str(handle.job_id), "stdout": str(handle.paths.stdout),
                                    "stderr": str(handle.paths.stderr), "command": job.command(resume)}
                print(f"{job.name}: job {handle.job_id}, log {handle.paths.stderr}", flush=True)
            _write_record(output_dir, record)
            if cluster == "local":
                for handle in handles:
                    handle.wait()
    return submitted


def failures(submitted: dict) -> list[str]:
    """One line per finished job that failed: the run, its exit status (or the job's last error line), its log."""
    lines = []
    for name, handle in submitted.items():
        if not handle.done() or handle.exception() is None:
            continue
        text = str(handle.exception()).strip()
        status = re.search(r"returned non-zero exit status (-?\d+)", text)
        cause = f"exit status {status.group(1)}" if status else (text.splitlines() or ["no message"])[-1]
        lines.append(f"{name}: failed ({cause}); log {handle.paths.stderr}")
    return lines
