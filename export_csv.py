"""Export .out files to one tidy long-format CSV: a row per evaluation, grid point, seed and metric.

    python export_csv.py -d runs/ER_s0.out,runs/ER_s1.out runs/PPO.out -o results.csv [--metrics reward_rates ...]

Columns: run (the file, or the pooled files, or --labels), agent, environment, grid_point (a sweep's point index,
0 without one), master_seed, seed (the seed's index under its master seed: seed_offset + column), step (the
evaluation's eval_times label), metric, value. A comma-joined argument pools one config's jobs (experiment/results.py;
refused when their configs differ beyond the seed). In Python, experiment.results.load_runs gives the same data as
arrays. The CSV is written atomically. Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.files import FileFormatError, atomic_write  # noqa: E402
from experiment.results import TIDY_COLUMNS, tidy_rows  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--data", nargs="+", required=True,
                        help=".out files; A.out,B.out pools one config's jobs into one run")
    parser.add_argument("-o", "--output", required=True, help="the CSV file to write")
    parser.add_argument("--metrics", nargs="+", default=None, help="only these per-seed metrics (default: all)")
    parser.add_argument("--labels", nargs="+", default=None, help="the run column's value, one per data argument")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.labels is not None and len(args.labels) != len(args.data):
            raise ValueError(f"{len(args.labels)} label(s) for {len(args.data)} data argument(s)")
        if os.path.exists(args.output) and not args.overwrite:
            raise ValueError(f"{args.output} exists; pass --overwrite to replace it")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TIDY_COLUMNS)
        rows = 0
        for index, spec in enumerate(args.data):
            for row in tidy_rows(spec, args.metrics, args.labels[index] if args.labels else None):
                writer.writerow(row)
                rows += 1
        atomic_write(args.output, lambda f: f.write(buffer.getvalue().encode()))
    except (FileFormatError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
