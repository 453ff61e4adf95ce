"""The internal loop: inference grid, ensembles, confidence, vectorised simulation and metrics."""
