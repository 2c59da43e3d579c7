"""Measurements of trained models, pure computation (no figures, no files): `likelihood`,
`sample_quality`, `disentanglement` and `latent`, each described in its own docstring."""
