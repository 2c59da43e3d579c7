"""reports/theory.md: the four theory questions, each answered with a number or figure this
pipeline produced. Written by the `beta_study` stage (`compare.beta_study`) from the study it also
saves as reports/metrics_beta.json, whose "figures" entry says where its figures are (relative to
reports/). Every comparison word ("farther", "no clear difference") is chosen from the numbers, so
a rerun that changes them cannot leave a false sentence behind."""

from __future__ import annotations

from .sweep import CLEAR_CHANGE, CLEAR_SCORE, differs, direction

ELBO_DERIVATION = r"""For any encoder $q(z \mid x)$, Jensen's inequality ($\log$ is concave) gives

$$\log p(x) = \log \mathbb{E}_{q(z \mid x)}\Big[\frac{p(x \mid z)\,p(z)}{q(z \mid x)}\Big]
\ \ge\ \mathbb{E}_{q(z \mid x)}[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x)\,\|\,p(z)),$$

and the gap is exactly $\mathrm{KL}(q(z \mid x)\,\|\,p(z \mid x))$. With $q = \mathcal{N}(\mu,
\mathrm{diag}\,\sigma^2)$ and $p(z) = \mathcal{N}(0, I)$ the KL has a closed form, summed over the
$d$ latent dims (`losses.kl_to_standard_normal`):

$$\mathrm{KL} = \tfrac{1}{2} \sum_{j=1}^{d} \big(\mu_j^2 + \sigma_j^2 - \log \sigma_j^2 - 1\big).$$

It is zero only when every image's posterior is the prior itself, and it grows with every nat of
information the code carries about the image. A beta-VAE minimises
$-\mathbb{E}_q[\log p(x \mid z)] + \beta\,\mathrm{KL}$: beta prices that information."""

REPARAMETERIZATION_DERIVATION = r"""Training needs
$\nabla_\phi \mathbb{E}_{q_\phi(z \mid x)}[f(z)]$ with $f(z) = \log p(x \mid z)$, but sampling is not
differentiable. Writing $z = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon$, $\epsilon \sim
\mathcal{N}(0, I)$ (`models.reparameterize`) moves the randomness into an input:

$$\nabla_\phi \mathbb{E}_{q_\phi}[f(z)] = \mathbb{E}_{\epsilon}\big[\nabla_z f(z)\,
\nabla_\phi(\mu_\phi + \sigma_\phi \odot \epsilon)\big],$$

so $\partial z / \partial \mu = 1$, $\partial z / \partial \sigma = \epsilon$, and backpropagation runs
from the decoder through $z$ into the encoder. The unbiased alternative without it, the score
function (REINFORCE), $\mathbb{E}_{q_\phi}[f(z)\,\nabla_\phi \log q_\phi(z \mid x)]$, uses only the
values of $f$, not its slope: each sample's weight is the whole log-likelihood, whose size
swamps the small differences between samples, so its variance is far larger."""


def _trend(first: dict, last: dict, key: str, what: str, fmt: str = "{:.3g}") -> str:
    """How `key` moved between two betas' seed spreads (`sweep.spread` entries)."""
    a, b = fmt.format(first[key]["mean"]), fmt.format(last[key]["mean"])
    change = differs(first[key], last[key], key)
    if not change:
        return f"{what} showed no clear effect ({a} to {b})"
    return f"{what} {'rose' if change > 0 else 'fell'} from {a} to {b}"


def _compare_all(values: dict[str, float], reference: float, fmt: str = "{:.2f}") -> str:
    """'0.95 for the autoencoder against 0.31 (beta = 1), 0.40 (beta = 5)', means keyed by beta."""
    listed = ", ".join(f"{fmt.format(v)} (beta = {b})" for b, v in values.items())
    return f"{fmt.format(reference)} for the autoencoder against {listed}"


def _side(ae: dict, vaes: list[dict], key: str, lower_is: str, higher_is: str) -> str:
    """Where the autoencoder's seeds lie against every beta's: clearly below all, above all, or
    neither (`sweep.differs` on the `key` entries of the spreads)."""
    directions = {differs(vae[key], ae[key], key) for vae in vaes}
    if directions == {-1}:
        return lower_is
    if directions == {1}:
        return higher_is
    return "not clearly apart from every VAE's, so no clear difference between the autoencoder and the VAEs"


def theory_markdown(study: dict) -> str:
    shapes, ae, cifar = study["shapes"], study["shapes_autoencoder"], study["cifar10"]
    seeds, ae_seeds = study["shapes_spread"], study["autoencoder_spread"]
    low = study["compared"]["low"]
    first_beta, last_beta = min(shapes, key=float), max(shapes, key=float)
    first, last = seeds[first_beta], seeds[last_beta]
    evaluation = study["evaluation"]
    tradeoff, smoothness, versus = (
        f"`{study['figures'][key]}`"
        for key in ("beta_tradeoff", "interpolation_smoothness", "autoencoder_vs_vae")
    )

    def per_beta(key: str, fmt: str = "{:.3f}") -> str:
        return ", ".join(f"{fmt.format(shapes[b][key])} (beta = {b})" for b in shapes)

    def column(key: str) -> dict[str, float]:
        return {b: shapes[b][key] for b in shapes}

    prior = column("prior_relative_error")
    kl_matters = (
        f"## 1. Why the KL term matters in the VAE loss\n\n{ELBO_DERIVATION}\n\nWithout the KL "
        "the loss asks only that each image's code be decodable; nothing makes N(0, I) describe "
        "where the codes are, so sampling from the prior has no reason to produce images. "
        f"Measured on shapes with {evaluation['prior_samples']:,} decoded z ~ N(0, I), as the "
        "squared distance to the nearest training image over a blank image's distance to it (0 "
        "= a copy of a real shape, 1 = no better than a blank image): "
        f"{_compare_all(prior, ae['prior_relative_error'])}. The autoencoder's samples are "
        + _side(
            ae_seeds,
            list(seeds.values()),
            "prior_relative_error",
            "closer to real shapes than every VAE's, so on this measure the KL did not help",
            "farther from real shapes than every VAE's: the KL is what makes the prior usable",
        )
        + f" (left column of {versus}). The KL is also the price of information in the code: "
        f"from beta = {first_beta} to beta = {last_beta}, "
        f"{_trend(first, last, 'kl', 'the KL (nats/image)')} (the factors hold "
        f"{study['factor_information_nats']:.1f} nats), "
        f"{_trend(first, last, 'active_units', 'active units', '{:.1f}')} of "
        f"{shapes[first_beta]['latent_dim']}, and "
        f"{_trend(first, last, 'recon_mse', 'the reconstruction MSE', '{:.4f}')} "
        f"({tradeoff}).\n"
    )

    gradient = study.get("reparameterization")
    if gradient:
        ratio = gradient["variance_ratio_median"]
        noisier = {
            1: "the score-function estimate is the noisier one",
            0: "here the two were about equally noisy",
            -1: "here the pathwise estimate was the noisier one",
        }[direction(1.0, ratio)]
        evidence = (
            f"Measured on the beta = {gradient['beta']} shapes model, for {gradient['images']} "
            f"test images x {gradient['samples']} samples in its {gradient['dims']} active dims: "
            "the variance of the score-function estimate of d E[reconstruction] / d mu (with a "
            f"leave-one-out baseline) was a median {ratio:.3g} times the pathwise estimate's "
            f"(range {gradient['variance_ratio_range'][0]:.3g} to "
            f"{gradient['variance_ratio_range'][1]:.3g}): {noisier}. Through that path the "
            "encoder learned posterior standard deviations of median "
            f"{gradient['posterior_std_median']:.3f} in those dims (`reparameterization` in "
            "`metrics_beta.json`)."
        )
    else:
        evidence = (
            f"The beta = {low} shapes model has no active latent dim, so there was no gradient "
            "through the code to measure (`reparameterization` is null in `metrics_beta.json`)."
        )
    reparameterization = (
        "## 2. How the reparameterization trick lets gradients pass through sampling\n\n"
        f"{REPARAMETERIZATION_DERIVATION}\n\n{evidence}\n"
    )

    midpoint = column("midpoint_relative_error")
    recon = column("recon_mse")
    spread_cost = _side(
        ae_seeds,
        list(seeds.values()),
        "recon_mse",
        "lower than every VAE's: the spread costs reconstruction detail",
        "higher than every VAE's: here the spread cost no reconstruction detail",
    )
    probabilistic = (
        "## 3. Why a probabilistic latent space rather than a fixed code\n\nA fixed code only has "
        "to be decodable at the training codes; what lies between them is never trained. A "
        "posterior with spread makes each image own a neighbourhood of codes that must all decode "
        "to it, so the decoder learns a filled region rather than isolated points. Measured at "
        f"the midpoints of {evaluation['paths']} straight paths between the codes of two test "
        "images, with the error relative to a blank image of question 1: "
        f"{_compare_all(midpoint, ae['midpoint_relative_error'])}; the autoencoder's midpoints "
        "are "
        + _side(
            ae_seeds,
            list(seeds.values()),
            "midpoint_relative_error",
            "closer to real shapes than every VAE's, so here the spread did not fill the gaps "
            "better",
            "farther from real shapes than every VAE's: the spread filled the gaps",
        )
        + f" (right column of {versus}). Test reconstruction MSE: "
        f"{_compare_all(recon, ae['recon_mse'], '{:.4f}')}; the autoencoder's is {spread_cost}.\n"
    )

    ratios = column("path_max_over_mean")
    cifar_keys = list(cifar)
    first_cifar, last_cifar = cifar_keys[0], cifar_keys[-1]
    smooth = (
        "## 4. What the KL term does for a smooth latent space\n\nThe KL pulls every posterior "
        "toward the same N(0, I), so the posteriors of different images overlap and the decoder "
        "has to change gradually across the overlap. Measured along the same paths "
        f"({evaluation['path_steps']} frames each) as the largest step between consecutive "
        "frames over the mean step (1 = the image changes evenly): "
        f"{_compare_all(ratios, ae['path_max_over_mean'])}. The autoencoder's paths are "
        + _side(
            ae_seeds,
            list(seeds.values()),
            "path_max_over_mean",
            "more even than every VAE's, so this measure does not show the KL smoothing the paths",
            "more abrupt than every VAE's: the KL made the paths smoother",
        )
        + f"; from beta = {first_beta} to beta = {last_beta} "
        f"{_trend(first, last, 'path_max_over_mean', 'the ratio', '{:.2f}')}"
        f" ({smoothness}). Whether the smooth space is also organised by factor: MIG "
        f"{per_beta('mig')} against {ae['mig']:.3f} for the autoencoder; DCI disentanglement "
        f"{per_beta('dci')} against {ae['dci']:.3f}; FactorVAE score {per_beta('factor_vae', '{:.2f}')} "
        f"against {ae['factor_vae']:.2f}. The Gaussian total correlation of the codes "
        f"(linear dependence between dims, 0 = none) was {per_beta('gaussian_tc', '{:.2f}')} nats "
        f"against {ae['gaussian_tc']:.2f} for the autoencoder; on CIFAR-10, which has no known "
        f"factors, it went from {cifar[first_cifar]['gaussian_tc']:.2f} (beta = {first_cifar}) to "
        f"{cifar[last_cifar]['gaussian_tc']:.2f} nats (beta = {last_cifar}) ({tradeoff}, one seed "
        f"each). Shapes numbers are means over {shapes[first_beta]['seeds']} seeds per model; a "
        f"difference is called one only when the means differ by at least {CLEAR_CHANGE:.0%} "
        f"({CLEAR_SCORE} for scores in [0, 1]) and the seeds' ranges do not overlap "
        f"(`shapes_spread` in `metrics_beta.json`, and `{study['figures']['beta_sweep']}`).\n"
    )

    header = (
        "# The theory questions, answered with this project's numbers\n\nGenerated by the "
        "`beta_study` stage with `reports/metrics_beta.json`; do not edit by hand. Shapes: the "
        "coloured-shapes dataset with six known factors, VAEs at beta = "
        f"{', '.join(shapes)} and a plain autoencoder (the same network, code z = mu, no "
        f"sampling, no KL), all trained alike under a Gaussian likelihood of fixed scale "
        f"(sigma = {study['likelihood_sigma']:g}), {shapes[first_beta]['seeds']} seeds each; {evaluation['test_images']:,} held-out test "
        "images. Reconstruction errors are per-pixel MSE on the 0..1 scale.\n"
    )
    return "\n".join([header, kl_matters, reparameterization, probabilistic, smooth])
