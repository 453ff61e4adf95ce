"""Models: the `model_spec`, the registry of families, encoders and the trained-model contract."""
