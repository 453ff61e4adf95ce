"""Features: multi-timeframe indicators, additional features, preprocessing, targets and splits."""
