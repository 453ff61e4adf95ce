"""PyTorch model families: lightning (windowed MLP), diffusion-ddpm / diffusion-ddim (CSDI-like) and sssd (S4D).

Importing this package does not import torch; each family module does, when the registry loads it.
"""
