"""Send many runs to SLURM through submitit, one array task per job, or run the same jobs here with --local.

    python launch.py --runs runs.json --output-dir results                # submit to SLURM, return
    python launch.py --runs runs.json --output-dir results --wait         # ... and wait, reporting failures
    python launch.py --runs runs.json --output-dir results --local        # the same jobs on this machine
    python launch.py --study --agents ER --environments ProcMaze --jobs 3 --output-dir study --resources '{"gpus_per_node": 1}'
    python launch.py --runs runs.json --output-dir results --resume       # relaunch: skip complete, resume the rest
    python launch.py --runs runs.json --output-dir results --dry-run      # print the jobs' commands

The run list's format, seed blocks and resources: experiment/launch.py (and docs/harness.md, "Many runs on a
cluster"). Every job is a train script's usual command line, so a job's outputs are those of running it by hand:
pool a run's seed blocks with `plot_metric.py -d <dir>/ER_seeds0-9.out,<dir>/ER_seeds10-19.out,...` or --group.
Exit status: 0 when every job was submitted (and, waiting, finished), 1 when a job failed (one line per failed run
with its log), 2 for a bad run list or flag (one line).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment import launch, study  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", metavar="FILE", help="a run list (JSON): experiment/launch.py says its format")
    source.add_argument("--study", action="store_true", help="the model-based study's cells (as run_study.py)")
    parser.add_argument("--agents", nargs="+", default=list(study.AGENTS), choices=list(study.AGENTS),
                        help="with --study")
    parser.add_argument("--environments", nargs="+", default=list(study.ENVIRONMENTS), choices=study.ENVIRONMENTS,
                        help="with --study")
    parser.add_argument("--regimes", nargs="+", default=list(study.REGIMES), choices=study.REGIMES, help="with --study")
    parser.add_argument("--seed", "-s", type=int, default=0, help="with --study: every cell's master seed")
    parser.add_argument("--jobs", type=int, default=1, help="with --study: jobs per cell (its seeds split evenly)")
    parser.add_argument("--resources", default="{}", metavar="JSON",
                        help="with --study: submitit parameters of every job, e.g. '{\"timeout_min\": 600}'")
    parser.add_argument("--output-dir", "-o", required=True, help="where the runs' outputs, logs and record go")
    parser.add_argument("--local", action="store_true", help="run the jobs on this machine (submitit's local "
                                                             "executor), --local-parallel at a time, and wait")
    parser.add_argument("--local-parallel", type=int, default=1, metavar="K", help="with --local: jobs at once (1)")
    parser.add_argument("--wait", action="store_true", help="SLURM: wait for the jobs and report failures")
    parser.add_argument("--resume", action="store_true", help="skip complete runs and resume incomplete ones")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs' commands without submitting")
    return parser.parse_args(argv)


def jobs_of(args) -> list:
    if args.runs:
        return launch.read_run_list(args.runs, args.output_dir)
    try:
        resources = json.loads(args.resources)
    except json.JSONDecodeError as e:
        raise launch.LaunchError(f"--resources is not valid JSON: {e}") from None
    if not isinstance(resources, dict):
        raise launch.LaunchError("--resources must be a JSON object")
    if args.jobs < 1:
        raise launch.LaunchError(f"--jobs must be >= 1, got {args.jobs}")
    return launch.study_jobs(args.output_dir, args.agents, args.environments, args.regimes, args.seed, args.jobs,
                             resources)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.local_parallel < 1:
            raise launch.LaunchError(f"--local-parallel must be >= 1, got {args.local_parallel}")
        jobs = jobs_of(args)
        todo, lines = launch.plan(jobs, args.resume, launch.read_record(args.output_dir))
        for line in lines:
            print(line)
        if args.dry_run:
            for job in todo:
                print(" ".join(job.command(args.resume)))
            return 0
        if not todo:
            print(f"all {len(jobs)} jobs are complete")
            return 0
        cluster = "local" if args.local else "slurm"
        submitted = launch.submit(todo, args.output_dir, cluster, args.resume, args.local_parallel)
    except launch.LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cluster == "slurm" and not args.wait:
        print(f"submitted {len(submitted)} jobs; launch the same command with --resume to continue incomplete runs")
        return 0
    for handle in submitted.values():
        handle.wait()
    failed = launch.failures(submitted)
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"{len(submitted) - len(failed)} of {len(submitted)} jobs finished" + (
        f"; {len(failed)} failed (launch again with --resume after fixing them)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
