"""reports/theory.md: the four theory questions, each answered with a number or figure this
pipeline produced. Written by the `beta_study` stage (`compare.beta_study`) from the study it also
saves as reports/metrics_beta.json, whose "figures" entry says where its figures are (relative to
reports/). Every comparison word ("farther", "no clear difference") is chosen from the numbers, so
a rerun that changes them cannot leave a false sentence behind."""

from __future__ import annotations

CLEAR_CHANGE = 0.05  # relative differences below 5% are "no clear difference" (here and in report)
FARTHER = ("farther from any real shape", "closer")  # prior-sample error: higher, lower
REAL_SHAPE = ("less like a real shape", "more like a real shape")  # midpoint error: higher, lower
ABRUPT = ("more abrupt", "more even")  # largest-over-mean step: higher, lower


def clear_change(before: float, after: float, tolerance: float = CLEAR_CHANGE) -> bool:
    """Whether `after` differs from `before` by at least `tolerance` of `before`: the one test
    behind every direction word of the generated text."""
    return before != 0 and abs(after - before) / abs(before) >= tolerance


def _versus(value: float, reference: float, higher: str, lower: str) -> str:
    """'3.1x, <higher>' / '0.40x, <lower>' / 'no clear difference' for value against reference."""
    if not clear_change(reference, value):
        return "no clear difference"
    return (
        f"{value / reference:.1f}x, {higher}"
        if value > reference
        else f"{value / reference:.2f}x, {lower}"
    )


def _trend(first: float, last: float, what: str, fmt: str = "{:.3g}") -> str:
    if not clear_change(first, last):
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
    tradeoff, smoothness, versus = (
        f"`{study['figures'][key]}`"
        for key in ("beta_tradeoff", "interpolation_smoothness", "autoencoder_vs_vae")
    )

    def per_beta(key: str, fmt: str = "{:.3f}") -> str:
        return ", ".join(f"{fmt.format(shapes[b][key])} (beta = {b})" for b in shapes)

    kl_matters = (
        "## 1. Why the KL term matters in the VAE loss\n\nWithout it the loss asks only that each "
        "image's code be decodable; nothing makes N(0, I) describe where the codes are, so "
        "sampling from the prior has no reason to produce images. Measured on shapes with "
        f"{evaluation['prior_samples']} decoded z ~ N(0, I): the per-pixel MSE to the nearest "
        f"training image is {ae['prior_nn_mse']:.4f} for the autoencoder (same network, no KL), "
        f"{lo['prior_nn_mse']:.4f} for beta = {low} and {hi['prior_nn_mse']:.4f} for beta = "
        f"{high}; autoencoder vs beta = {low}: "
        f"{_versus(ae['prior_nn_mse'], lo['prior_nn_mse'], *FARTHER)} (left column of {versus}). "
        f"The KL is also the price of information in the code: from beta = {first_beta} to beta = "
        f"{last_beta}, {_trend(first['kl'], last['kl'], 'the KL (nats/image)')}, "
        f"{_trend(first['active_units'], last['active_units'], 'active units', '{:.0f}')} of "
        f"{first['latent_dim']}, and "
        f"{_trend(first['recon_mse'], last['recon_mse'], 'the reconstruction MSE', '{:.4f}')} "
        f"({tradeoff}).\n"
    )

    gradient = study.get("reparameterization")
    if gradient:
        ratio = gradient["variance_ratio_median"]
        noisier = (
            "the score-function estimate is the noisier one"
            if ratio > 1 + CLEAR_CHANGE
            else "here the two were about equally noisy"
            if ratio >= 1 - CLEAR_CHANGE
            else "here the pathwise estimate was the noisier one"
        )
        evidence = (
            f"On the beta = {gradient['beta']} shapes model, for {gradient['images']} test images "
            f"x {gradient['samples']} samples in its {gradient['dims']} active dims, the variance "
            "of the score-function estimate of d E[reconstruction] / d mu (with a leave-one-out "
            f"baseline) was a median {ratio:.3g} times the pathwise estimate's (range "
            f"{gradient['variance_ratio_range'][0]:.3g} to "
            f"{gradient['variance_ratio_range'][1]:.3g}): {noisier}. Through that path the encoder "
            "learned posterior standard deviations of median "
            f"{gradient['posterior_std_median']:.3f} in those dims (`reparameterization` in "
            "`metrics_beta.json`)."
        )
    else:
        evidence = (
            f"The beta = {low} shapes model has no active latent dim, so there was no gradient "
            "through the code to measure (`reparameterization` is null in `metrics_beta.json`)."
        )
    reparameterization = (
        "## 2. How the reparameterization trick lets gradients pass through sampling\n\nDrawing z "
        "~ N(mu, sigma^2) is not a differentiable function of mu and sigma. Writing z = mu + "
        "sigma * eps with eps ~ N(0, I) (`models.reparameterize`) makes the randomness an input, "
        "so dz/dmu = 1 and dz/dsigma = eps, and backpropagation runs from the decoder through z "
        "into the encoder. Without it, the standard unbiased alternative is the score-function "
        f"(REINFORCE) estimate, which uses the loss value but not its slope. {evidence}\n"
    )

    probabilistic = (
        "## 3. Why a probabilistic latent space rather than a fixed code\n\nA fixed code only has "
        "to be decodable at the training codes; what lies between them is never trained. A "
        "posterior with spread makes each image own a neighbourhood of codes that must all decode "
        "to it, so the decoder learns a filled region rather than isolated points. Measured at "
        f"the midpoints of {evaluation['paths']} straight paths between the codes of two test "
        "images: the decoded midpoint's MSE to the nearest training image is "
        f"{ae['midpoint_nn_mse']:.4f} for the autoencoder, {lo['midpoint_nn_mse']:.4f} for beta = "
        f"{low} and {hi['midpoint_nn_mse']:.4f} for beta = {high}; autoencoder vs beta = {low}: "
        f"{_versus(ae['midpoint_nn_mse'], lo['midpoint_nn_mse'], *REAL_SHAPE)} (right column of "
        f"{versus}). The price of the spread: test reconstruction MSE {ae['recon_mse']:.4f} for "
        f"the autoencoder, {lo['recon_mse']:.4f} for beta = {low}, {hi['recon_mse']:.4f} for beta "
        f"= {high}.\n"
    )

    cifar_keys = list(cifar)
    first_cifar, last_cifar = cifar_keys[0], cifar_keys[-1]
    cifar_tc = (
        "on CIFAR-10, which has no known factors, it went from "
        f"{cifar[first_cifar]['gaussian_tc']:.2f} (beta = {first_cifar}) to "
        f"{cifar[last_cifar]['gaussian_tc']:.2f} nats (beta = {last_cifar})"
    )
    smooth = (
        "## 4. What the KL term does for a smooth latent space\n\nThe KL pulls every posterior "
        "toward the same N(0, I), so the posteriors of different images overlap and the decoder "
        "has to change gradually across the overlap; a larger beta pulls harder. Measured along "
        f"the same paths ({evaluation['path_steps']} frames each) as the largest step between "
        "consecutive frames over the mean step (1 = the image changes evenly): autoencoder "
        f"{ae['path_max_over_mean']:.2f}, {per_beta('path_max_over_mean', '{:.2f}')}; autoencoder "
        f"vs beta = {low}: {_versus(ae['path_max_over_mean'], lo['path_max_over_mean'], *ABRUPT)} "
        f"({smoothness}). Whether the smooth space is also organised by factor: MIG "
        f"{per_beta('mig')} against {ae['mig']:.3f} for the autoencoder; DCI disentanglement "
        f"{per_beta('dci')} against {ae['dci']:.3f}. The Gaussian total correlation of the codes "
        f"(linear dependence between dims, 0 = none) was {per_beta('gaussian_tc', '{:.2f}')} nats "
        f"against {ae['gaussian_tc']:.2f} for the autoencoder; {cifar_tc} ({tradeoff}).\n"
    )

    header = (
        "# The theory questions, answered with this project's numbers\n\nGenerated by the "
        "`beta_study` stage with `reports/metrics_beta.json`; do not edit by hand. Shapes: the "
        f"coloured-shapes dataset with six known factors, VAEs at beta = {beta_list} and a plain "
        "autoencoder (the same network, code z = mu, no sampling, no KL), all trained alike; "
        f"{evaluation['test_images']:,} held-out test images. Errors are per-pixel MSE on the 0..1 "
        "scale.\n"
    )
    return "\n".join([header, kl_matters, reparameterization, probabilistic, smooth])
