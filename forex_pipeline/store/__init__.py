"""Storage: SQLAlchemy tables, Alembic migrations, repository functions and the model file store."""
