"""vaelab: a reproducible, experiment-tracked study of Variational Autoencoders (docs/design.md)."""
