"""The latent-space explorer and its figures.

    explorer   Explorer: encode, decode, sample, rank dims, embeddings, nearest neighbours
    paths      interpolation, traversals, attribute vectors, the manifold (Traversal, Manifold)
    analogies  analogies of a conditional model, factor swaps of an unconditional one
    geometry   lerp, slerp, gaussian_grid, nearest_neighbours (no model needed)
    figures    make_figure(explorer, kind), write_run_figures(explorer, out_dir)
"""

from vae.explore.analogies import Analogies, FactorSwap
from vae.explore.explorer import EMBEDDING_METHODS, Explorer
from vae.explore.figures import FIGURE_KINDS, make_figure, write_run_figures
from vae.explore.geometry import gaussian_grid, lerp, nearest_neighbours, slerp
from vae.explore.paths import INTERPOLATION_METHODS, RANGE_MODES, Embedding, Manifold, Traversal

__all__ = [
    "Explorer", "Analogies", "FactorSwap", "Traversal",
    "Manifold", "Embedding", "slerp", "lerp", "gaussian_grid", "nearest_neighbours",
    "write_run_figures", "make_figure", "FIGURE_KINDS", "EMBEDDING_METHODS", "RANGE_MODES", "INTERPOLATION_METHODS",
]
