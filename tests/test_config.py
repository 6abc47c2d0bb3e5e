"""Config loading and validation: the published file loads unchanged; every bad input names its problem."""
import json
import os
import subprocess
import sys

import pytest

from experiment.config import ConfigError, load_config, load_json, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED_ER = {  # Young et al.: the paper's configs/ER.json, key for key
    "num_hidden_layers": 3, "num_hidden_units": 200, "alpha_adam": 5e-05, "b1_adam": 0.9, "b2_adam": 0.99,
    "eps_adam": 1e-5, "wd_adam": 1e-6, "softmax_temp": 0.1, "exploration_strat": "softmax", "batch_size": 320,
    "num_seeds": 30, "target_update_frequency": 100, "use_target": True, "buffer_size": 100000, "num_steps": 1000000,
    "gamma": 0.9, "training_start_time": 1000, "eval_frequency": 500, "save_params": True, "save_frequency": 10000,
    "eval_steps": 100, "eval_batch_size": 32, "environment": "ProcMaze", "episodic_env": True,
    "env_config": {"grid_size": 4}, "activation": "elu",
}


def test_published_er_config_is_the_papers_and_loads():
    assert load_json(os.path.join(REPO, "configs", "ER.json")) == PUBLISHED_ER
    config = load_config("ER", os.path.join(REPO, "configs", "ER.json"))
    # Defaults of the paper code filled in; no fix flag on.
    assert config["double_DQN"] is False and config["updates_per_step"] == 1
    assert not any(v for k, v in config.items() if k.startswith("fix_"))
    assert config["agent_type"] == "ER"


def test_all_shipped_er_configs_validate():
    for name in os.listdir(os.path.join(REPO, "configs")):
        if name.startswith("ER") or name == "quickstart.json":
            load_config("ER", os.path.join(REPO, "configs", name))


def with_changes(**changes):
    config = dict(PUBLISHED_ER)
    for key, value in changes.items():
        if value is KeyError:
            del config[key]
        else:
            config[key] = value
    return config


@pytest.mark.parametrize("changes, message", [
    (dict(alpha_adm=1e-4), "unknown config key 'alpha_adm' for ER DQN; did you mean 'alpha_adam'?"),
    (dict(rollout_length=10), "'rollout_length' belongs to the perfect-model DQN / simple-model DQN / latent-model DQN "
                              "/ PPO agent, not ER DQN"),
    (dict(num_seeds=0), "'num_seeds' must be an integer in [1, 65536]"),
    (dict(num_seeds=10**9), "'num_seeds' must be an integer in [1, 65536]"),
    (dict(alpha_adam=float('inf')), "'alpha_adam' must be a finite number, got inf"),
    (dict(buffer_size=2**40), "'buffer_size' is 1099511627776: integers must lie within"),
    (dict(num_hidden_layers=10**6), "'num_hidden_layers' must be an integer in [0, 64]"),
    (dict(num_seeds="30"), "'num_seeds' must be an integer"),
    (dict(num_seeds=2.5), "'num_seeds' must be an integer"),
    (dict(use_target=1), "'use_target' must be true or false"),
    (dict(gamma=1.5), "'gamma' must be a number in [0, 1]"),
    (dict(alpha_adam=KeyError), "missing the required key 'alpha_adam'"),
    (dict(eval_frequency=300), "eval_frequency (300) must divide num_steps (1000000)"),
    (dict(buffer_size=100), "buffer_size (100) must be at least batch_size (320)"),
    (dict(environment="ProcMase"), "unknown environment 'ProcMase'; did you mean 'ProcMaze'?"),
    (dict(env_config={"grid_sise": 4}), "env_config key 'grid_sise' is not accepted by ProcMaze (did you mean 'grid_size'?)"),
    (dict(env_config={"grid_size": 0}), "environment: grid_size must be an integer >= 1, got 0"),
    (dict(env_config={"grid_size": "4"}), "grid_size must be an integer >= 1, got '4'"),
    (dict(exploration_strat="boltzmann"), "'exploration_strat' must be one of softmax, epsilon_greedy"),
    (dict(exploration_strat="epsilon_greedy"), "needs the key 'epsilon'"),
    (dict(softmax_temp=KeyError), "needs the key 'softmax_temp'"),
    (dict(activation="tanh"), "'activation' must be one of relu, silu, elu"),
    (dict(env_config=[4]), "'env_config' must be a JSON object"),
])
def test_bad_values_are_named(changes, message):
    with pytest.raises(ConfigError) as error:
        validate("ER", with_changes(**changes))
    assert message in str(error.value)


def test_whole_number_floats_are_accepted_for_counts():
    assert validate("ER", with_changes(num_steps=1e6))["num_steps"] == 1000000


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_json(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_seeds": 3,\n "gamma": }')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* line 2 column"):
        load_json(str(bad))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        load_json(str(listing))


def run_script(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(REPO, "train_scripts", "train_ER_DQN.py"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_reports_one_line_and_exits_nonzero_before_compiling(tmp_path):
    bad = tmp_path / "typo.json"
    bad.write_text(json.dumps(with_changes(num_seed=3)))
    result = run_script("--config", str(bad), "--output", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: unknown config key 'num_seed' for ER DQN; did you mean 'num_seeds'?"]
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.glob("run*"))  # nothing written

    result = run_script("--config", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert result.returncode == 2 and "config file" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_imagined_batch_past_int32_is_refused():
    with open(os.path.join(REPO, "configs", "perfect_model.json")) as f:
        config = json.load(f)
    config["rollout_length"] = 10 ** 9  # 32 rollout starts: 3.2e10 rows, which overflowed int32 inside jit
    with pytest.raises(ConfigError, match="rollout_length 1,000,000,000 x 32 rollout starts = 32,000,000,000"):
        validate("perfect_model", config)
    config["rollout_length"] = 2 ** 31 // 32 - 1
    assert validate("perfect_model", config)["rollout_length"] == 2 ** 31 // 32 - 1
