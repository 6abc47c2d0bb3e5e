"""aggregate.py (the stats extra: rliable) on synthetic scores whose aggregates are known by hand."""
import csv
import json

import numpy as np
import pytest

from experiment import files

pytestmark = pytest.mark.extra("stats")


def write_scores(path, scores, times=(0, 100, 200)):
    """A .out whose every evaluation of seed i is scores[i]."""
    scores = np.asarray(scores, np.float32)
    data = {"config": {"agent_type": "ER", "environment": "T", "seed": 0, "num_seeds": len(scores)},
            "metrics": {"reward_rates": np.tile(scores, (len(times), 1)), "eval_times": np.asarray(times, np.int64)},
            "meta": {"format": files.OUT_FORMAT, "complete": True}}
    files.save_pickle(str(path), data)
    return str(path)


def test_aggregates_of_known_scores(tmp_path, capsys):
    """A scores i = 0..99 on two tasks with references random 0, best 99: normalised i / 99, so IQM (the middle 50
    runs, 25..74), median, mean and optimality gap are all 0.5 exactly; B is A + 198 (2 after normalising): every B
    run beats every A run, so P(B > A) = 1 and P(A > B) = 0, B's optimality gap is 0 and its IQM 2.5. The fraction
    of A's runs above tau = 0.5 is 0.5 (i >= 50)."""
    import aggregate

    a = [write_scores(tmp_path / f"a{task}.out", np.arange(100)) for task in (1, 2)]
    b = [write_scores(tmp_path / f"b{task}.out", np.arange(100) + 198) for task in (1, 2)]
    references = tmp_path / "refs.json"
    references.write_text(json.dumps({"T1": {"random": 0, "best": 99}, "T2": {"random": 0, "best": 99}}))
    output = str(tmp_path / "agg")
    assert aggregate.main(["--references", str(references), "-o", output, "--reps", "500",
                           "--algorithm", "A", f"T1={a[0]}", f"T2={a[1]}",
                           "--algorithm", "B", f"T1={b[0]}", f"T2={b[1]}"]) == 0
    with open(output + ".csv", newline="") as f:
        rows = {(r["algorithm"], r["statistic"]): r for r in csv.DictReader(f)}
    for statistic in ("IQM", "median", "mean", "optimality gap"):
        assert float(rows["A", statistic]["estimate"]) == pytest.approx(0.5, abs=1e-6)
        assert float(rows["A", statistic]["ci_low"]) <= 0.5 <= float(rows["A", statistic]["ci_high"])
    assert float(rows["B", "IQM"]["estimate"]) == pytest.approx(2.5, abs=1e-6)
    assert float(rows["B", "optimality gap"]["estimate"]) == 0.0
    assert float(rows["B > A", "probability of improvement"]["estimate"]) == 1.0
    assert float(rows["A > B", "probability of improvement"]["estimate"]) == 0.0
    matrices, _ = aggregate.score_matrices([["A", f"T1={a[0]}", f"T2={a[1]}"]], json.loads(references.read_text()),
                                           "reward_rates", None)
    taus = np.array([0.5])
    profile, _ = aggregate.profiles(matrices, taus, reps=100)
    assert profile["A"][0] == pytest.approx(0.5)
    for suffix in ("_aggregates.png", "_profiles.png", "_improvement.png", ".md"):
        assert (tmp_path / f"agg{suffix}").stat().st_size > 0


def test_bad_input_is_one_line(tmp_path, capsys):
    import aggregate

    run = write_scores(tmp_path / "a.out", np.arange(4))
    short = write_scores(tmp_path / "s.out", np.arange(3))
    references = tmp_path / "refs.json"
    references.write_text(json.dumps({"T1": {"random": 0, "best": 0}, "T2": {"random": 0, "best": 1}}))
    cases = [(["--algorithm", "A", f"T1={run}"], "are equal"),
             (["--algorithm", "A", f"T2={run}", f"T3={run}"], "no reference scores for task 'T3'"),
             (["--algorithm", "A", f"T2={run}", "--algorithm", "B", f"T1={run}"], "needs the same tasks"),
             (["--algorithm", "A", "T2"], "is not TASK=FILE"),
             (["--algorithm", "A", f"T2={tmp_path / 'missing.out'}"], "not found")]
    for arguments, message in cases:
        assert aggregate.main(["--references", str(references), "-o", str(tmp_path / "x"), *arguments]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    references.write_text(json.dumps({"T1": {"random": 0, "best": 1}, "T2": {"random": 0, "best": 1}}))
    assert aggregate.main(["--references", str(references), "-o", str(tmp_path / "x"),
                           "--algorithm", "A", f"T1={run}", f"T2={short}"]) == 2
    assert "runs on different tasks" in capsys.readouterr().err
