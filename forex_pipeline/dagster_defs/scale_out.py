"""Scale-out settings: the Celery broker and result backend shared by the submitting host and its workers.

Both sides must agree on the broker, so both read the same environment variables:
FOREX_CELERY_BROKER (default a local Redis, database 0) and FOREX_CELERY_BACKEND (default the same
Redis, database 1; `rpc://` for an AMQP broker). FOREX_CELERY_KEY_PREFIX namespaces every Redis key, so
two deployments (or test runs) can share one Redis without taking each other's tasks. See docs/deployment.md.
"""


import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from forex_pipeline.io import atomic_write_text

BROKER_ENV = "FOREX_CELERY_BROKER"
BACKEND_ENV = "FOREX_CELERY_BACKEND"
KEY_PREFIX_ENV = "FOREX_CELERY_KEY_PREFIX"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
BACKEND_SCHEMES = ("redis", "rediss", "rpc", "db+postgresql", "db+sqlite")


def _checked(url: str, env: str, schemes: tuple[str, ...]) -> str:
    """`url` unchanged if its scheme is one Celery understands here, else a ValueError naming `env`."""
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ValueError(f"{env}: URL scheme {scheme or '(none)'!r} is not one of {', '.join(schemes)}")
    return url


def celery_broker_url() -> str:
    """FOREX_CELERY_BROKER, else the local Redis database 0."""
    return _checked(os.environ.get(BROKER_ENV) or DEFAULT_BROKER, BROKER_ENV, BROKER_SCHEMES)


def default_backend_for(broker: str) -> str:
    """Database 1 of a Redis broker (results apart from the task queue); `rpc://` for an AMQP broker."""
    parts = urlsplit(broker)
    if parts.scheme in ("redis", "rediss"):
        return urlunsplit(parts._replace(path="/1"))
    return "rpc://"


def celery_backend_url() -> str:
    """FOREX_CELERY_BACKEND, else the default backend for the configured broker."""
    url = os.environ.get(BACKEND_ENV) or default_backend_for(celery_broker_url())
    return _checked(url, BACKEND_ENV, BACKEND_SCHEMES)


def celery_config_source() -> dict[str, Any]:
    """Extra Celery settings: dagster-celery's broker retry options, no prefetching, and the Redis key prefix if one is set."""
    from dagster_celery.defaults import broker_transport_options

    transport: dict[str, Any] = dict(broker_transport_options)
    # one step at a time per worker slot, nothing reserved ahead: a killed worker then takes no
    # waiting step down with it (Redis would hand a reserved message back only after its visibility timeout)
    source: dict[str, Any] = {"broker_transport_options": transport, "worker_prefetch_multiplier": 1}
    scheme = urlsplit(celery_broker_url()).scheme
    if scheme in ("redis", "rediss"):
        source["worker_disable_prefetch"] = True
    prefix = os.environ.get(KEY_PREFIX_ENV, "")
    if prefix:
        if scheme not in ("redis", "rediss"):
            raise ValueError(f"{KEY_PREFIX_ENV}={prefix!r} needs a Redis broker, not {scheme}:// (use a RabbitMQ vhost)")
        transport["global_keyprefix"] = prefix
        source["result_backend_transport_options"] = {"global_keyprefix": prefix}
    return source


def celery_executor_config() -> dict[str, Any]:
    """The dagster-celery executor config (`broker`, `backend`, `config_source`) from the environment, read now."""
    return {"broker": celery_broker_url(), "backend": celery_backend_url(), "config_source": celery_config_source()}


class WorkerLost(RuntimeError):
    """Stored as the result of a step whose Celery worker died: the run waiting for it fails with this message."""


def current_celery_task_id() -> str | None:
    """The id of the Celery task running this step when a dagster-celery worker runs it, else None."""
    import sys

    if "celery" not in sys.modules:  # never imported: not in a Celery worker
        return None
    from celery import current_task

    return current_task.request.id if current_task else None


def fail_lost_step(celery_task_id: str, message: str) -> None:
    """Record a lost step's Celery task as failed in the result backend, so the run process waiting for
    it (dagster-celery polls the backend) stops waiting and fails the run with `message`.

    A worker killed mid-step never reports back: without this the run would wait forever."""
    from dagster_celery.make_app import make_app

    app = make_app({**celery_executor_config(), "include": []})
    try:
        app.backend.mark_as_failure(celery_task_id, WorkerLost(message))
    finally:
        app.close()


def write_worker_config(path: Path) -> Path:
    """Write the YAML that `dagster-celery worker start -y` reads, so workers use the job's broker."""
    text = yaml.safe_dump({"execution": {"config": celery_executor_config()}}, sort_keys=True)
    return atomic_write_text(path, text)


def main() -> None:
    """`python -m forex_pipeline.dagster_defs.scale_out PATH`: write the worker config for this environment to PATH."""
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m forex_pipeline.dagster_defs.scale_out WORKER_CONFIG.yaml")
    print(write_worker_config(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
