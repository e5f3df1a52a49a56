"""The names each env option accepts, in one place that the config and the parts that implement them share
(rlsched.env.config validates against them; actions, rewards and observer check at import that they implement
exactly these)."""

ACTION_TYPES = ("scale", "discrete", "log_lr", "prior_offset")
REWARD_TYPES = ("neg_val_loss", "paper", "final_only", "log_diff", "paired_log")
PREDICTION_SOURCES = ("train", "validation")
SCALE_PER = ("optimizer_step", "env_step")
