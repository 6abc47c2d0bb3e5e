"""The multi-seed harness: config loading and validation, seeding, jit/vmap, the host loop, files."""
