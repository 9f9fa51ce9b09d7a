"""The PyTorch eager baselines of the train-step section: the MLP, conv and Burgess VAEs with the
toolkit's layer sizes, Adam, Bernoulli BCE-with-logits summed over pixels and the analytic KL, on
the CPU with a chosen number of threads or on CUDA with TF32 matmuls when JAX runs on a GPU (JAX's
default for float32 dots there). Torch is only a baseline (`pip install -e ".[bench]"`); the
library never imports it, and these functions import it only when called.
"""

from __future__ import annotations

import numpy as np

from benchmarks.sizes import BURGESS_LATENT, CONV_CHANNELS, CONV_LATENT, MLP_HIDDEN, MLP_LATENT
from benchmarks.timing import on_gpu


def torch_runner(arch: str, batch_np: np.ndarray, seed=0, threads: int | None = None, device: str = "cpu"):
    """PyTorch eager step on `device`; `threads` intra-op threads (CPU only; set at every call, so runners
    can differ)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if arch == "mlp":
        latent = MLP_LATENT
        enc = nn.Sequential(nn.Flatten(), nn.Linear(784, MLP_HIDDEN[0]), nn.ReLU(),
                            nn.Linear(MLP_HIDDEN[0], MLP_HIDDEN[1]), nn.ReLU())
        feat = MLP_HIDDEN[1]
        dec = nn.Sequential(nn.Linear(latent, MLP_HIDDEN[1]), nn.ReLU(), nn.Linear(MLP_HIDDEN[1], MLP_HIDDEN[0]),
                            nn.ReLU(), nn.Linear(MLP_HIDDEN[0], 784), nn.Unflatten(1, (1, 28, 28)))
    elif arch == "conv":
        latent = CONV_LATENT
        c1, c2 = CONV_CHANNELS
        enc = nn.Sequential(nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(), nn.Flatten())
        feat = c2 * 7 * 7
        dec = nn.Sequential(nn.Linear(latent, feat), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
                            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, 1, 4, 2, 1))
    elif arch == "burgess":  # disentanglement_lib conv_encoder / deconv_decoder, 'same' padding at 64x64
        latent = BURGESS_LATENT
        enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                            nn.Conv2d(32, 64, 2, 2, 0), nn.ReLU(), nn.Conv2d(64, 64, 2, 2, 0), nn.ReLU(), nn.Flatten(),
                            nn.Linear(1024, 256), nn.ReLU())
        feat = 256
        dec = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
                            nn.Unflatten(1, (64, 4, 4)), nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
                            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 32, 4, 2, 1),
                            nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    else:
        raise ValueError(arch)
    mean_head, log_var_head = nn.Linear(feat, latent), nn.Linear(feat, latent)
    modules = nn.ModuleList([enc, dec, mean_head, log_var_head]).to(device)
    opt = torch.optim.Adam(modules.parameters(), lr=1e-3)
    x = torch.from_numpy(np.ascontiguousarray(batch_np.transpose(0, 3, 1, 2))).to(device)  # NCHW
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def step():
        h = enc(x)
        mean, log_var = mean_head(h), log_var_head(h)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = dec(z)
        recon = bce(logits, x).flatten(1).sum(1)
        kl = 0.5 * (log_var.exp() + mean**2 - 1.0 - log_var).sum(1)
        loss = (recon + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def run(n):
        if threads:
            torch.set_num_threads(threads)
        for _ in range(n):
            loss = step()
        float(loss.detach())  # waits for the device

    return run


def torch_device() -> str:
    """'cuda' when JAX runs on a GPU and torch sees one (TF32 matmuls then, JAX's GPU default), else 'cpu'."""
    import torch

    if on_gpu() and torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32, as XLA does for float32 dots by default on GPUs
        torch.backends.cudnn.allow_tf32 = True
        return "cuda"
    return "cpu"
