"""Experiment presets and scripts that reproduce results with the vae toolkit."""
