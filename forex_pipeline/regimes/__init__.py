"""Regimes: per-bar labels from rules, per-regime scores and best-model selection."""
