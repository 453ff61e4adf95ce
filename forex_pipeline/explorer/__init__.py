"""The results explorer: one Dash page beside Dagster (`forex-pipeline ui`) over the project database.

Dagster's UI has no plugin point for custom pages, so the views the specification asks for (training
history, regime analysis, regime definitions, queue panel) live here. Plain Python over the same
store/queue/pipeline functions as the CLI; it never imports dagster. One module per view (history,
regimes, definitions, queues), each with `layout(context)` and `register_callbacks(app, context)`;
`app.create_app` assembles them and `common` holds what the views share.
"""
