"""The shell: parameters, disk I/O, Prefect flows, MLflow tracking and the ``dealcast`` CLI."""
