"""What the reparameterization trick buys, measured on a trained VAE.

The gradient of E_{z ~ q(z|x)}[f(z)] with respect to the posterior mean mu can be estimated two
unbiased ways from samples:

* pathwise (reparameterization): z = mu + sigma * eps, so each sample's gradient is df/dz,
  backpropagated through the decoder; this is what `models.reparameterize` makes possible;
* score function (REINFORCE), the only option when z is drawn as a black box: f(z) times
  d log q(z | mu, sigma) / d mu = (z - mu) / sigma^2, here with a leave-one-out baseline (the mean
  f of the other samples), which keeps it unbiased and lowers its variance.

`estimator_variances` draws many samples for a few images and compares the two estimators'
variances per (image, latent dim); f is the reconstruction term of the loss.
"""

from __future__ import annotations

import torch

from .data import to_model_input
from .losses import gaussian_nll
from .models import VAE


def estimator_variances(model: VAE, images: torch.Tensor, dims: list[int], samples: int = 64,
                        seed: int = 0) -> dict:
    """images: uint8 NHWC; dims: the latent dims to compare (the active ones: in an unused dim the
    decoder ignores z_j and the pathwise gradient is zero). Returns the median variance ratio
    score-function / pathwise over (image, dim), and the posterior std in those dims."""
    device = next(model.parameters()).device
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    x = to_model_input(images, device, generator)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    count, latent = mu.shape
    eps = torch.randn(samples, count, latent, generator=generator).to(device)
    mu_leaf = mu.expand(samples, count, latent).clone().requires_grad_(True)
    z = mu_leaf + std * eps
    decoded = model.decode(z.reshape(-1, latent))
    recon = gaussian_nll(x.repeat(samples, 1, 1, 1), decoded, model.log_sigma).reshape(samples, count)
    recon.sum().backward()
    pathwise = mu_leaf.grad  # (samples, images, latent): one gradient estimate per sample
    f = recon.detach()
    baseline = (f.sum(dim=0, keepdim=True) - f) / (samples - 1)
    score = (f - baseline).unsqueeze(-1) * eps / std
    index = torch.tensor(dims, dtype=torch.long, device=device)
    var_path = pathwise.var(dim=0)[:, index]
    var_score = score.var(dim=0)[:, index]
    ratio = (var_score / var_path.clamp(min=1e-30)).flatten().cpu()
    return {"variance_ratio_median": float(ratio.median()),
            "variance_ratio_range": [float(ratio.min()), float(ratio.max())],
            "posterior_std_median": float(std[:, index].median()),
            "images": count, "samples": samples, "dims": len(dims)}
