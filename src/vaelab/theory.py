"""reports/theory.md: the four theory questions, each answered with a number or figure this
pipeline produced. Written from reports/metrics_beta.json by the compare_betas stage, and every
comparison word ("farther", "no clear difference") is chosen from the numbers, so a rerun that
changes them cannot leave a false sentence behind."""

from __future__ import annotations

CLEAR = 0.05  # relative differences below 5% are called "no clear difference"


def _versus(value: float, reference: float, higher: str, lower: str) -> str:
    """'3.1x <higher>' / '0.4x, i.e. <lower>' / 'no clear difference' for value against reference."""
    if reference == 0 or abs(value - reference) / abs(reference) < CLEAR:
        return "no clear difference"
    return f"{value / reference:.1f}x, {higher}" if value > reference else f"{value / reference:.2f}x, {lower}"


def _trend(first: float, last: float, what: str, fmt: str = "{:.3g}") -> str:
    if first == 0 or abs(last - first) / abs(first) < CLEAR:
        return f"{what} showed no clear effect ({fmt.format(first)} to {fmt.format(last)})"
    verb = "rose" if last > first else "fell"
    return f"{what} {verb} from {fmt.format(first)} to {fmt.format(last)}"


def theory_markdown(study: dict) -> str:
    shapes, ae, cifar = study["shapes"], study["shapes_autoencoder"], study["cifar10"]
    low, high = study["compared"]["low"], study["compared"]["high"]
    lo, hi = shapes[low], shapes[high]
    first, last = shapes[min(shapes, key=float)], shapes[max(shapes, key=float)]
    first_beta, last_beta = min(shapes, key=float), max(shapes, key=float)
    evaluation = study["evaluation"]
    beta_list = ", ".join(shapes)

    def per_beta(key: str, fmt: str = "{:.3f}") -> str:
        return ", ".join(f"{fmt.format(shapes[b][key])} (beta = {b})" for b in shapes)

    kl_matters = (
        "## 1. Why the KL term matters in the VAE loss\n\n"
        "Without it the loss asks only that each image's code be decodable; nothing makes N(0, I) describe "
        "where the codes are, so sampling from the prior has no reason to produce images. Measured on "
        f"shapes with {evaluation['prior_samples']} decoded z ~ N(0, I): the per-pixel MSE to the nearest "
        f"training image is {ae['prior_nn_mse']:.4f} for the autoencoder (same network, no KL), "
        f"{lo['prior_nn_mse']:.4f} for beta = {low} and {hi['prior_nn_mse']:.4f} for beta = {high}; autoencoder "
        f"vs beta = {low}: {_versus(ae['prior_nn_mse'], lo['prior_nn_mse'], 'farther from any real shape', 'closer')}"
        " (left column of `figures/autoencoder_vs_vae_shapes.png`). The KL is also the price of "
        f"information in the code: from beta = {first_beta} to beta = {last_beta}, "
        f"{_trend(first['kl'], last['kl'], 'the KL (nats/image)')}, "
        f"{_trend(first['active_units'], last['active_units'], 'active units', '{:.0f}')} of {first['latent_dim']}, "
        f"and {_trend(first['recon_mse'], last['recon_mse'], 'the reconstruction MSE', '{:.4f}')} "
        "(`figures/beta_tradeoff.png`).\n"
    )

    gradient = study.get("reparameterization")
    if gradient:
        ratio = gradient["variance_ratio_median"]
        noisier = ("the score-function estimate is the noisier one" if ratio > 1 + CLEAR else
                   "here the two were about equally noisy" if ratio >= 1 - CLEAR else
                   "here the pathwise estimate was the noisier one")
        evidence = (
            f"On the beta = {gradient['beta']} shapes model, for {gradient['images']} test images x "
            f"{gradient['samples']} samples in its {gradient['dims']} active dims, the variance of the score-function "
            f"estimate of d E[reconstruction] / d mu (with a leave-one-out baseline) was a median {ratio:.3g} times "
            f"the pathwise estimate's (range {gradient['variance_ratio_range'][0]:.3g} to "
            f"{gradient['variance_ratio_range'][1]:.3g}): {noisier}. Through that path the encoder learned "
            f"posterior standard deviations of median {gradient['posterior_std_median']:.3f} in those dims "
            "(`reparameterization` in `metrics_beta.json`).")
    else:
        evidence = (f"The beta = {low} shapes model has no active latent dim, so there was no gradient through the "
                    "code to measure (`reparameterization` is null in `metrics_beta.json`).")
    reparameterization = (
        "## 2. How the reparameterization trick lets gradients pass through sampling\n\n"
        "Drawing z ~ N(mu, sigma^2) is not a differentiable function of mu and sigma. Writing "
        "z = mu + sigma * eps with eps ~ N(0, I) (`models.reparameterize`) makes the randomness an input, so "
        "dz/dmu = 1 and dz/dsigma = eps, and backpropagation runs from the decoder through z into the encoder. "
        "Without it, the standard unbiased alternative is the score-function (REINFORCE) estimate, which uses "
        f"the loss value but not its slope. {evidence}\n"
    )

    probabilistic = (
        "## 3. Why a probabilistic latent space rather than a fixed code\n\n"
        "A fixed code only has to be decodable at the training codes; what lies between them is never "
        "trained. A posterior with spread makes each image own a neighbourhood of codes that must all decode "
        "to it, so the decoder learns a filled region rather than isolated points. Measured at the midpoints of "
        f"{evaluation['paths']} straight paths between the codes of two test images: the decoded midpoint's MSE "
        f"to the nearest training image is {ae['midpoint_nn_mse']:.4f} for the autoencoder, "
        f"{lo['midpoint_nn_mse']:.4f} for beta = {low} and {hi['midpoint_nn_mse']:.4f} for beta = {high}; "
        f"autoencoder vs beta = {low}: "
        f"{_versus(ae['midpoint_nn_mse'], lo['midpoint_nn_mse'], 'less like a real shape', 'more like a real shape')} "
        "(right column of `figures/autoencoder_vs_vae_shapes.png`). The price of the spread: test "
        f"reconstruction MSE {ae['recon_mse']:.4f} for the autoencoder, {lo['recon_mse']:.4f} for beta = {low}, "
        f"{hi['recon_mse']:.4f} for beta = {high}.\n"
    )

    cifar_keys = list(cifar)
    first_cifar, last_cifar = cifar_keys[0], cifar_keys[-1]
    cifar_tc = (f"on CIFAR-10, which has no known factors, it went from {cifar[first_cifar]['gaussian_tc']:.2f} "
                f"(beta = {first_cifar}) to {cifar[last_cifar]['gaussian_tc']:.2f} nats (beta = {last_cifar})")
    smooth = (
        "## 4. What the KL term does for a smooth latent space\n\n"
        "The KL pulls every posterior toward the same N(0, I), so the posteriors of different images overlap and "
        "the decoder has to change gradually across the overlap; a larger beta pulls harder. Measured along the "
        f"same paths ({evaluation['path_steps']} frames each) as the largest step between consecutive frames over "
        f"the mean step (1 = the image changes evenly): autoencoder {ae['path_max_over_mean']:.2f}, "
        f"{per_beta('path_max_over_mean', '{:.2f}')}; autoencoder vs beta = {low}: "
        f"{_versus(ae['path_max_over_mean'], lo['path_max_over_mean'], 'more abrupt', 'more even')} "
        "(`figures/interpolation_smoothness.png`). Whether the smooth space is also organised by factor: "
        f"MIG {per_beta('mig')} against {ae['mig']:.3f} for the autoencoder; DCI disentanglement "
        f"{per_beta('dci')} against {ae['dci']:.3f}. The Gaussian total correlation of the codes (linear "
        f"dependence between dims, 0 = none) was {per_beta('gaussian_tc', '{:.2f}')} nats against "
        f"{ae['gaussian_tc']:.2f} for the autoencoder; {cifar_tc} (`figures/beta_tradeoff.png`).\n"
    )

    header = (
        "# The theory questions, answered with this project's numbers\n\n"
        "Generated by the `compare_betas` stage from `reports/metrics_beta.json`; do not edit by hand. "
        f"Shapes: the coloured-shapes dataset with six known factors, VAEs at beta = {beta_list} and a plain "
        "autoencoder (the same network, code z = mu, no sampling, no KL), all trained alike; "
        f"{evaluation['test_images']:,} held-out test images. Errors are per-pixel MSE on the 0..1 scale.\n"
    )
    return "\n".join([header, kl_matters, reparameterization, probabilistic, smooth])
