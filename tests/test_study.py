"""The study scripts: every cell has a config and a command; the plot draws the cells it finds."""
import os

import numpy as np

import plot_study
import run_study
from experiment import files, study
from experiment.config import load_json, validate

AGENT_TYPES = {"ER": "ER", "perfect_model": "perfect_model", "simple_model": "simple_model",
               "categorical_latent_model": "latent_model", "gaussian_latent_model": "latent_model"}


def test_every_cell_has_a_valid_config_with_its_regime_and_environment():
    cells = study.cells()
    assert len(cells) == 30
    for agent, environment, regime in cells:
        config = validate(AGENT_TYPES[agent], load_json(study.config_path(agent, environment, regime)))
        assert config["environment"] == environment
        assert config["episodic_env"] == (environment == "ProcMaze")
        low = regime == "low"
        assert (config["num_steps"], config["updates_per_step"], config["eval_frequency"]) == \
            ((100_000, 10, 50) if low else (1_000_000, 1, 500))
        assert config["target_update_frequency"] == (10 if low else 100)


def test_dry_run_prints_one_resumable_command_per_cell(capsys):
    assert run_study.main(["--dry-run", "--output-dir", "somewhere"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 30
    assert all("--resume" in line and "--output somewhere" + os.sep in line for line in lines)
    assert "train_latent_model_DQN.py" in next(l for l in lines if "] gaussian_latent_model_PanFlute_low_data:" in l)


def test_grid_search_is_one_sweep_process_per_cell(tmp_path, capsys):
    """--grid-search: per cell, the cell's config plus the paper's 10 step sizes x 11 temperatures as one sweep."""
    assert run_study.main(["--dry-run", "--grid-search", "--environments", "ProcMaze", "--regimes", "high",
                           "--num-seeds", "2", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all("_grid" in line for line in lines)
    for agent, step_key in (("ER", "alpha_adam"), ("simple_model", "Q_alpha"), ("gaussian_latent_model", "Q_alpha")):
        path = tmp_path / "configs" / f"{agent}_grid.json"
        config = validate(AGENT_TYPES[agent], load_json(str(path)))
        assert len(config["sweep"]) == 110 and config["num_seeds"] == 2
        assert config["sweep"][0] == {step_key: 3.125e-6, "softmax_temp": 0.0125}
        assert config["sweep"][-1] == {step_key: 1.6e-3, "softmax_temp": 12.8}
        # The published cell's tuned point is on the grid.
        published = load_json(study.config_path(agent, "ProcMaze", "high"))
        assert {step_key: published[step_key], "softmax_temp": published["softmax_temp"]} in config["sweep"]


def test_plot_study_draws_the_cells_it_finds(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for agent in ("ER", "perfect_model"):
        for regime in ("high", "low"):
            metrics = {"reward_rates": rng.normal(size=(6, 3)).astype(np.float32), "eval_times": np.arange(6) * 500}
            files.save_pickle(str(tmp_path / (study.cell_name(agent, "PanFlute", regime) + ".out")),
                              {"config": {}, "metrics": metrics, "meta": {}})
    found = plot_study.study_curves(str(tmp_path), window=2)
    assert sorted(found) == [("PanFlute", "high"), ("PanFlute", "low")]
    assert [agent for agent, _, _ in found[("PanFlute", "low")]] == ["ER", "perfect_model"]
    assert found[("PanFlute", "low")][0][1].shape == (5, 3)  # smoothed: 6 - 2 + 1 evaluations
    output = tmp_path / "study.png"
    assert plot_study.main(["--input-dir", str(tmp_path), "--output", str(output)]) == 0
    assert output.stat().st_size > 10_000
    assert plot_study.main(["--input-dir", str(tmp_path / "empty")]) == 2
    assert "no study .out files" in capsys.readouterr().err
