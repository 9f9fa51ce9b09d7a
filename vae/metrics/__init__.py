"""Metrics of trained representations.

    vae.metrics.disentanglement   supervised disentanglement scores on data with ground-truth factors:
                                  BetaVAE, FactorVAE, MIG, DCI, SAP, modularity/explicitness
    vae.metrics.sample_quality    fd_classifier, precision/recall, label distribution, CAS
"""

from vae.metrics.disentanglement import (
    GroundTruth,
    beta_vae_score,
    compute_all,
    dci,
    dci_from_codes,
    dci_from_importance,
    discrete_entropy,
    discrete_mutual_info,
    encoder_mean_fn,
    factor_vae_score,
    histogram_discretize,
    mig,
    mig_from_codes,
    modularity_explicitness,
    modularity_explicitness_from_codes,
    modularity_from_mutual_info,
    sap,
    sap_from_codes,
)

__all__ = [
    "GroundTruth", "beta_vae_score", "compute_all", "dci", "dci_from_codes", "dci_from_importance",
    "discrete_entropy", "discrete_mutual_info", "encoder_mean_fn", "factor_vae_score", "histogram_discretize", "mig",
    "mig_from_codes", "modularity_explicitness", "modularity_explicitness_from_codes", "modularity_from_mutual_info",
    "sap", "sap_from_codes",
]
