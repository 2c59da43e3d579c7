"""Measurements of trained models, pure computation (no figures, no files)."""
