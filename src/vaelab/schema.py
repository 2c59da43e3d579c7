"""The sections of params.yaml as pydantic models, read top to bottom: datasets, a run, sweeps,
evaluate, compare. Each refuses keys it does not list: a mistyped key would otherwise be ignored,
or train with the default. config.Params puts them together and checks what spans sections."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from .validation import Fraction, Listing, Name, Omittable, count, number, rule

LABELLED_SOURCES = ("cifar10",)  # the sources whose data carry class labels (y_train, y_test)
GMM_KEYS = ("gmm_components", "gmm_covariance")  # evaluate's mixture, sample_quality scores it too
# How a VAE's codes may be drawn (metrics/sample_quality.py): its prior, or an ex-post Gaussian
# mixture (a second-stage VAE, Dai & Wipf 2019, was measured and dropped: docs/benchmarks.md).
Sampler = Literal["prior", "gmm"]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


# datasets.<name>: where fetch@<name> gets data/<name>.npz from
class Cifar10(Schema):
    source: Literal["cifar10"]
    image_size: Literal[32]
    mirror_dirs: Listing[Name]  # searched in order after $VAELAB_DATA_DIR
    official_md5: Name
    png_sha256: Name
    allow_download: StrictBool
    train_limit: count(0)  # 0 = every image; N = the first N
    test_limit: count(0)


class CelebA(Schema):
    source: Literal["celeba"]
    image_size: count(8)
    mirror_dirs: Listing[Name] = []
    archive_sha256: Name
    crop_fraction: number(gt=0)
    max_images: count(0)
    test_count: count(1)


class Shapes(Schema):
    source: Literal["shapes"]
    image_size: Literal[32]
    mirror_dirs: Listing[Name] = []
    shapes: Listing[Name]
    hue: count(1)
    scale: count(1)
    rotation: count(1)
    x: count(1)
    y: count(1)
    test_count: count(1)
    seed: count(0)


Dataset = Annotated[Cifar10 | CelebA | Shapes, Field(discriminator="source")]


class Likelihood(Schema):
    kind: Literal["gaussian", "gaussian_fixed"]  # sigma learned per channel, or fixed
    sigma: number(gt=0)


class Decoder(Schema):
    latent_dim: count(1)
    likelihood: Likelihood  # the pixel likelihood p(image | z), one of losses.LIKELIHOODS


class Fc(Decoder):
    arch: Literal["fc"]
    hidden: Listing[count(1)]


class Conv(Decoder):
    arch: Literal["conv"]
    widths: Listing[count(1)]


class ResNet(Schema):
    arch: Literal["resnet"]
    width: count(1)


class Run(Schema):
    dataset: Name
    epochs: count(1)
    batch_size: count(2)
    lr: number(gt=0)
    warmup_fraction: Fraction  # linear warm-up over this share of the steps, then linear decay
    grad_clip: number(ge=0)  # the largest gradient norm a step may take; 0 = no clipping
    seed: count(0)
    mixed_precision: Literal["auto", "cuda", True, False] = False  # runtime.use_mixed_precision


class Autoencoder(Run):
    model: Annotated[Fc | Conv, Field(discriminator="arch")]


class Vae(Autoencoder):
    objective: Literal["vae"]  # recon + beta * KL
    beta: number(ge=0)
    kl_warmup_fraction: Fraction = 0.0  # beta rises from 0 over this share of the steps; 0 = none


class Ae(Autoencoder):
    objective: Literal["ae"]  # recon alone, z = mu: whatever beta a shared template gives it is 0
    beta: Annotated[number(ge=0), AfterValidator(lambda beta: 0.0)] = 0.0
    kl_warmup_fraction: Omittable[Fraction]  # unused: lets an AE share the VAEs' sweep template


class Classifier(Run):
    objective: Literal["classifier"]  # the judge of compare.sample_quality
    model: ResNet
    optimizer: Literal["sgd", "adam"]
    holdout: count(0)  # the last N training images, kept from the judge to calibrate it
    weight_decay: number(ge=0)
    label_smoothing: Fraction
    augment: StrictBool
    # blur, down-up sampling and noise on part of each batch (train.degrade), so the judge
    # recognises a blurry object as well as a sharp one
    degrade: StrictBool = False


AnyRun = Annotated[Vae | Ae | Classifier, Field(discriminator="objective")]
RunName = Annotated[
    str, rule(lambda n: "/" not in n, "has a / in its name (reserved for the seeds of a sweep)")
]


# One run per seed (member_name): its other keys are a run's but seed, checked by Params per seed.
class Sweep(Schema):
    model_config = ConfigDict(extra="allow")
    seeds: Annotated[
        Listing[count(0)], rule(lambda s: len(set(s)) == len(s), "must not repeat a seed, got {}")
    ]


# evaluate.<dataset>: what evaluate@<run> measures, by its dataset's source
class Evaluate(Schema):
    batch_size: count(1)
    active_threshold: number(ge=0)  # a latent dim is active when Var_x E[z_j | x] exceeds this
    interpolation_steps: count(2)
    traversal_dims: count(1)
    traversal_span: number(gt=0)
    seed: count(0)


# The sampler of evaluate@<run>'s figures (one for every run, so they compare): the prior
# N(0, I) or a Gaussian mixture fitted to the training codes.
class Cifar10Evaluate(Evaluate):
    sampler: Sampler = "prior"  # of every run's samples.png
    gmm_components: count(1) = 10
    gmm_covariance: Literal["full", "diag"] = "full"


class ShapesEvaluate(Evaluate):
    code_count: count(2)
    mi_bins: count(2)
    prior_samples: count(1)
    paths: count(1)
    path_steps: count(3)
    traversal_steps: count(2)


EVALUATE = {"cifar10": Cifar10Evaluate, "celeba": Evaluate, "shapes": ShapesEvaluate}
# The keys of a comparison that name runs (in runs and autoencoders a sweep names its seeds' runs)
NAMED_RUNS = {
    "sample_quality": ("runs", "judge"),
    "beta_study": ("runs", "autoencoders", "autoencoder", "cifar_pair"),
}


class SampleQuality(Schema):
    runs: Listing[Name]  # VAEs of one labelled dataset
    judge: Name  # a classifier of that dataset
    sample_count: count(2)
    samplers: Annotated[
        list[Sampler],
        rule(lambda s: "prior" in s and len(set(s)) == len(s), "must hold prior once, got {}"),
    ] = ["prior", "gmm"]  # prior: every other sampler is measured against it
    blur_sigma: number(gt=0)
    batch_size: count(1)
    seed: count(0)


class BetaStudy(Schema):
    runs: Listing[Name]  # VAEs of one dataset: every beta with the same seeds
    autoencoders: Omittable[Listing[Name]]  # one per seed; [autoencoder] when absent
    autoencoder: Name  # the one drawn in the figures
    cifar_pair: Listing[Name]  # two VAEs of one dataset, of different beta
    cifar_codes: count(2)
    gradient_images: count(1)
    gradient_samples: count(2)
    seed: count(0)


# compare: the cross-run stages (their runs are checked against each other by Params)
class Compare(Schema):
    sample_quality: SampleQuality
    beta_study: BetaStudy


class Tracking(Schema):
    sample_every: count(1)  # log a sample grid to the MLflow run every N epochs (and the last)


class Render(Schema):
    seed: count(0)
