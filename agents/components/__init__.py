"""Building blocks shared by the agents: networks, optimizers, replay buffers, exploration."""
