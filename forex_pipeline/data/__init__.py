"""Market data: loaders, validation, resampling, synthetic regime-switching bars, bar files."""
