"""Agents: one module per family, each exposing `make(config, env, env_params) -> Agent`."""
