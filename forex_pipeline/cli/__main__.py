"""`python -m forex_pipeline.cli` runs the `forex-pipeline` command."""

from forex_pipeline.cli import main

main()
