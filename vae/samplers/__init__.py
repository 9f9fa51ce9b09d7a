"""Samplers fitted after training: densities over a trained model's latent space, or priors over
the codes of a discrete model, saved in the run directory with provenance (a floor above
`vae.trained`: they read runs, and the commands use them).

    base        LatentSampler (fit / sample / log_prob), make_sampler, sampler_names
    gaussian    normal (the model's prior), vamp (the VampPrior's mixture), gmm
    flows       maf, iaf (masked autoregressive flows)
    two_stage   two_stage (Dai & Wipf 2019)
    manifold    hypersphere (vMF mixture, svae), poincare (tangent mixture, pvae)
    code_prior  code_prior (causal transformer over code indices, vqvae), the shared fitting
    pixelcnn    pixelcnn (gated PixelCNN over a 2-D code map, vqvae with model.code_map)
    store       fit_sampler, load_sampler, FittedSampler, StaleSamplerError
"""

from vae.samplers.base import LatentSampler, SamplerError, make_sampler, register_sampler, sampler_names
# registers the samplers
from vae.samplers import gaussian, flows, two_stage, manifold, code_prior, pixelcnn  # noqa: F401
from vae.samplers.store import (FittedSampler, StaleSamplerError, fit_sampler, fitted_samplers, latent_source,
                                load_sampler, params_fingerprint, training_latents)

__all__ = ["LatentSampler", "SamplerError", "make_sampler", "register_sampler", "sampler_names", "FittedSampler",
           "StaleSamplerError", "fit_sampler", "fitted_samplers", "latent_source", "load_sampler", "params_fingerprint",
           "training_latents"]
