"""PPO training of a controller: the run, its callbacks, checkpoints and checkpoint selection."""
