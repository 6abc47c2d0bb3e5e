"""Bytes a run writes to its checkpoints, per checkpoint, with and without the row log (experiment/files.py).

    python benchmarks/bench_checkpoint.py -c configs/pets/HalfCheetah.json --seeds 2 --episodes 3 [--json O.json]

Runs a PETS config's first --episodes episodes (with ninit_rollouts raised to them, so they are the cheap random
episodes; the buffers stay sized for the whole run) with a checkpoint after every chunk, twice: the row log off (every
checkpoint holds the whole state, as before it existed) and on. Prints the bytes of every checkpoint write (the .npz
and its new row-log segments) and, from them, the bytes a whole run would write: off, one whole state per
checkpoint; on, every later checkpoint as the last one measured (after the model's first training: the model and
its optimiser state change every episode and are written whole, the episode buffers only by their new rows).
"""
import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from experiment.devices import use_every_core  # noqa: E402

use_every_core()

from experiment import config as config_lib  # noqa: E402
from experiment import files, runner  # noqa: E402
from agents import pets  # noqa: E402


def measure(config, make_agent, episodes: int, row_log: bool) -> list[int]:
    files.ROW_LOG_MIN_BYTES = (1 << 20) if row_log else 1 << 62
    sizes, write = [], files.atomic_write

    def counting(path, writer, previous=None):
        write(path, writer, previous)
        if ".ckpt" in path:
            sizes.append((os.path.basename(path), os.path.getsize(path)))

    files.atomic_write = counting
    try:
        with tempfile.TemporaryDirectory() as directory:
            try:
                runner.run(config, make_agent, seed=0, output=os.path.join(directory, "run"), progress=False,
                           stop_after_chunks=episodes)
            except runner.Interrupted:
                pass
    finally:
        files.atomic_write = write
    per_checkpoint, current = [], 0
    for name, size in sizes:  # segments come before the .npz they belong to
        current += size
        if name.endswith(".npz"):
            per_checkpoint.append(current)
            current = 0
    return per_checkpoint[:episodes]  # the one written on stopping repeats the last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=3, help="chunks run and checkpointed (3)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    raw = config_lib.load_json(args.config)
    # cheap random episodes first; the run (and its buffers) keeps its length
    changes = {"num_seeds": args.seeds, "checkpoint_frequency": raw["eval_frequency"], "ninit_rollouts": args.episodes,
               "ntrain_iters": raw["ntrain_iters"] + raw.get("ninit_rollouts", 1) - args.episodes}
    config = config_lib.validate("PETS", {**raw, **changes})
    make_agent = pets.make
    chunks = config["num_steps"] // config["eval_frequency"]
    result = {"config": args.config, "seeds": args.seeds, "chunks_in_run": chunks}
    for row_log in (False, True):
        per_checkpoint = measure(config, make_agent, args.episodes, row_log)
        if row_log:  # later checkpoints: the state that changed (the model, trained after the last of these
            # episodes) written whole, plus the episode's new rows; the last checkpoint here is such a one
            whole_run = sum(per_checkpoint[:-1]) + per_checkpoint[-1] * (chunks - len(per_checkpoint) + 1)
        else:
            whole_run = per_checkpoint[-1] * chunks
        result["row_log" if row_log else "whole_state"] = {"bytes_per_checkpoint": per_checkpoint,
                                                            "projected_bytes_whole_run": whole_run}
        print(f"{'row log' if row_log else 'whole state'}: bytes per checkpoint {per_checkpoint}; a whole run of "
              f"{chunks} checkpoints writes about {whole_run / 2**30:.2f} GiB", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
