from setuptools import setup

setup(
    name="seedsuite",
    version="0.1.0",
    description="Many-seed JAX experiments for reinforcement learning: whole agent-environment loops jit-compiled and vmapped over seeds",
    python_requires=">=3.10",
    packages=["agents", "agents.components", "envs", "experiment"],
    package_data={"envs": ["assets/*.xml"]},
    install_requires=[
        "jax>=0.4.30",
        "jaxlib>=0.4.30",
        "dm-haiku>=0.0.12",
        "optax>=0.2.2",
        "chex>=0.1.86",
        "gymnax>=1.0",
        "flax",  # flax.struct dataclasses for agent states (also a gymnax dependency)
        "six",  # gymnax 1.0.1 imports six at package import without declaring it
        "numpy",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6.100"],  # xdist: the suite on 2 cores; hypothesis: fuzzing
        # Benchmarks only: flashbax's buffers are the baseline our replay buffers are measured against.
        "bench": ["flashbax>=0.1.3", "distrax>=0.1.5"],  # baselines: flashbax (replay), PureJaxRL needs distrax
        # Real Atari (envs/atari.py): EnvPool's ALE emulators, ROMs included, stepped through a host callback.
        "atari": ["envpool>=1.2.5"],
        # MuJoCo: the cartpole swing-up is checked against its model file; MJX runs PETS's Reacher3D, Pusher, HalfCheetah.
        "mujoco": ["mujoco>=3.2", "mujoco-mjx>=3.2"],
        # --tensorboard: the .out's per-chunk scalars as TensorBoard event files too.
        "tensorboard": ["tensorboardX>=2.6"],
        # aggregate.py: IQM, optimality gap, performance profiles, probability of improvement (Agarwal et al. 2021).
        # rliable 1.2 pins arch < 8, whose import fails under pandas 3: hence pandas < 3.
        "stats": ["rliable>=1.2", "pandas<3"],
        # launch.py: many runs as SLURM job arrays (or the same jobs locally) through submitit.
        "slurm": ["submitit>=1.5"],
    },
)
