import os

# Tests run on the CPU with a fixed small thread pool; keep XLA from grabbing every core twice.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
