"""Measurements of trained models, pure computation (no figures, no files).

* `likelihood`: the ELBO and its parts, bits/dim, reconstruction error, latent use, judge accuracy.
* `sample_quality`: how much generated images look like the data, judged by the project's
  classifier.
* `disentanglement`: MIG, DCI and Gaussian total correlation against known factors.
* `latent`: the geometry of a latent space: shells, re-encoding, attribute directions and probes,
  interpolation smoothness, nearest-neighbour distances, gradient estimator variances.
"""
