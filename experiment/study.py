"""The model-based generalisation study (Young et al., Figure 4) as cells: agent x environment x data regime.

Every cell has its own config, configs/<agent>[_<environment>][_low_data].json (ProcMaze and the high-data
regime are unmarked, so the five published files are the ProcMaze high-data cells), and its own output
prefix <dir>/<cell>. run_study.py trains cells, plot_study.py draws them.
"""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# agent (config prefix) -> training script
AGENTS = {
    "ER": "train_ER_DQN.py",
    "perfect_model": "train_perfect_model_DQN.py",
    "simple_model": "train_simple_model_DQN.py",
    "categorical_latent_model": "train_latent_model_DQN.py",
    "gaussian_latent_model": "train_latent_model_DQN.py",
}
ENVIRONMENTS = ("ProcMaze", "ButtonGrid", "PanFlute")
REGIMES = ("high", "low")  # high: 1M steps, 1 update each; low: 100k steps, 10 updates each

# The paper's grid search: step sizes doubling from 3.125e-6 to 1.6e-3, softmax temperatures doubling from
# 0.0125 to 12.8 (110 points); the step size is alpha_adam for ER and the perfect model, Q_alpha for the others.
STEP_SIZES = [3.125e-6 * 2**i for i in range(10)]
TEMPERATURES = [0.0125 * 2**i for i in range(11)]
STEP_SIZE_KEY = {"ER": "alpha_adam", "perfect_model": "alpha_adam", "simple_model": "Q_alpha",
                 "categorical_latent_model": "Q_alpha", "gaussian_latent_model": "Q_alpha"}


def grid_search_sweep(agent: str) -> dict:
    """The 'sweep' block of a cell's grid search."""
    return {STEP_SIZE_KEY[agent]: STEP_SIZES, "softmax_temp": TEMPERATURES}


def cell_name(agent: str, environment: str, regime: str) -> str:
    for value, known in ((agent, AGENTS), (environment, ENVIRONMENTS), (regime, REGIMES)):
        if value not in known:
            raise ValueError(f"unknown study value '{value}' (known: {', '.join(known)})")
    return agent + ("" if environment == "ProcMaze" else f"_{environment}") + ("_low_data" if regime == "low" else "")


def config_path(agent: str, environment: str, regime: str) -> str:
    return os.path.join(REPO_ROOT, "configs", cell_name(agent, environment, regime) + ".json")


def train_script(agent: str) -> str:
    return os.path.join(REPO_ROOT, "train_scripts", AGENTS[agent])


def cells(agents=tuple(AGENTS), environments=ENVIRONMENTS, regimes=REGIMES):
    """Every (agent, environment, regime) asked for, environment-major (the figure's row order)."""
    return [(a, e, r) for e in environments for r in regimes for a in agents]
