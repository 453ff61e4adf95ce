"""forex_pipeline: train each model configuration once, backtest every inference configuration out of sample."""

__version__ = "0.1.0"
