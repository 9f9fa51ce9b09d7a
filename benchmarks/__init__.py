"""Benchmarks of the toolkit against plain flax/optax and PyTorch eager: `python -m benchmarks.run`."""
