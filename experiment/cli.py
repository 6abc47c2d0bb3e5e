"""Command-line entry shared by the train scripts: the paper code's flags plus --resume/--overwrite."""
import argparse
import os
import sys

from experiment import config as config_lib
from experiment import devices, files, runner
from experiment.tensorboard import TensorBoardError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART_CONFIG = os.path.join(REPO_ROOT, "configs", "quickstart.json")


def parse_args(argv, default_output: str, description: str, default_config: str = QUICKSTART_CONFIG):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", "-s", type=int, default=0, help="master seed; every seed's key derives from it")
    parser.add_argument("--seed-offset", type=int, default=None, metavar="N",
                        help="this job's first seed index among the master seed's seeds (sets the config's "
                             "seed_offset): jobs of n seeds at 0, n, 2n, ... train the seeds of one job, bit for bit")
    parser.add_argument("--output", "-o", type=str, default=default_output,
                        help="output prefix: writes PREFIX.out, PREFIX.params (and PREFIX.ckpt.npz while running)")
    parser.add_argument("--config", "-c", type=str, default=None,
                        help=f"JSON config (default: {os.path.relpath(default_config, REPO_ROOT)}, this agent's "
                             f"quickstart: under 2 minutes on a 2-core CPU)")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--tensorboard", metavar="DIR", default=None,
                        help="also write the per-chunk scalars as TensorBoard event files in DIR (tensorboard extra)")
    parser.add_argument("--check", action="store_true",
                        help="validate the config, build the environment and agent and estimate the memory, then exit "
                             "without running or writing anything")
    parser.add_argument("--describe", action="store_true",
                        help="print every config key of this agent with its default, what it must be and its meaning "
                             "(docs/keys/ has the same as tables), then exit")
    parser.add_argument("--distributed", action="store_true",
                        help="multi-host: call jax.distributed.initialize() first (under SLURM it reads the job's "
                             "variables); runs are sharded across every host's devices, host 0 writes the files")
    parser.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                        help="with --distributed outside SLURM: process 0's address (JAX_COORDINATOR_ADDRESS also works)")
    parser.add_argument("--num-processes", type=int, default=None, metavar="N",
                        help="with --distributed outside SLURM: how many processes take part")
    parser.add_argument("--process-id", type=int, default=None, metavar="I",
                        help="with --distributed outside SLURM: this process's index, 0 .. N-1 (0 writes the files)")
    return parser.parse_args(argv)


def one_line(message: str) -> str:
    """The message with control characters (a config's own key may hold a newline) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def add_series_flags(parser) -> None:
    """The flags of a command that drives many runs (pets_ablation.py, ppo_deepsea.py), as the train scripts'."""
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs (complete ones are kept)")
    parser.add_argument("--overwrite", action="store_true", help="train every run again, replacing its files")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--check", action="store_true",
                        help="validate every run's config, build its environment and agent and estimate the memory, "
                             "then exit without running or writing anything")


def series_flags_conflict(args) -> int:
    """2 after one line when --resume and --overwrite are both given (any train or multi-run script), else 0."""
    if args.resume and args.overwrite:
        print("error: --resume and --overwrite exclude each other", file=sys.stderr)
        return 2
    return 0


def run_in_series(label: str, config: dict, make_agent, seed: int, output: str, args) -> int:
    """One run of a command that drives many (pets_ablation.py, ppo_deepsea.py), skipped when its .out is already
    complete (unless args.overwrite); with args.check only checked. Returns 0 when the run is done, else the
    command's exit status after one line: 2 for an error, 1 when interrupted (run the command again with
    --resume)."""
    if args.check:
        try:
            print(f"{label}: {runner.check_only(config, make_agent, seed=seed)}")
        except (config_lib.ConfigError, runner.RunError) as e:
            print(f"error: {label}: {one_line(str(e))}", file=sys.stderr)
            return 2
        return 0
    if files.run_complete(output) and not args.overwrite:
        return 0
    print(f"== {label}", flush=True)
    try:
        runner.run(config, make_agent, seed=seed, output=output, resume=args.resume, overwrite=args.overwrite,
                   progress=not args.no_progress)
    except (runner.RunError, files.FileFormatError) as e:
        print(f"error: {label}: {one_line(str(e))}", file=sys.stderr)
        return 2
    except runner.Interrupted as e:
        print(f"{label}: {e}; run again with --resume", file=sys.stderr)
        return 1
    finally:
        runner.release_compiled()  # the next config compiles programs of its own
    return 0


def main(agent_type: str, make_agent, default_output: str, argv=None, default_config: str = "quickstart.json",
         description: str | None = None) -> int:
    """A train script: `description` (its docstring) heads --help; default_config is a file under configs/."""
    default_config = os.path.join(REPO_ROOT, "configs", default_config)
    args = parse_args(argv, default_output,
                      description or f"Train {config_lib.AGENT_NAMES[agent_type]} over many seeds at once.",
                      default_config)
    if args.describe:
        from experiment import describe

        print(describe.text(agent_type))
        return 0
    if series_flags_conflict(args):
        return 2
    config_path = args.config or default_config
    try:
        distributed = devices.distributed_arguments(args.distributed, args.coordinator, args.num_processes,
                                                    args.process_id)
        if distributed is not None and not args.check:
            devices.join_processes(distributed)  # a no-op where the script's devices.start_backend() joined them
        raw = config_lib.load_json(config_path)
        if args.seed_offset is not None:
            raw["seed_offset"] = args.seed_offset
        config = config_lib.validate(agent_type, raw)
        if args.check:
            print(runner.check_only(config, make_agent, seed=args.seed))
            print(f"{config_path}: a valid {config_lib.AGENT_NAMES[agent_type]} config; nothing was run")
            return 0
        runner.run(config, make_agent, seed=args.seed, output=args.output, resume=args.resume,
                   overwrite=args.overwrite, progress=not args.no_progress, tensorboard=args.tensorboard)
    except (config_lib.ConfigError, files.FileFormatError, runner.RunError, TensorBoardError,
            devices.DistributedError) as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except runner.Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return 130
    written = f"{args.output}.out" + (f" and {args.output}.params" if config["save_params"] else "")
    if distributed is not None:
        import jax

        if jax.process_index() > 0:
            print(f"process {jax.process_index()} of {jax.process_count()} done; process 0 writes {written}")
            return 0
    print(f"wrote {written}")
    return 0
