"""Notifications of queue completion, queue failure and new regime bests: a log line, and e-mail if enabled.

A notification never stops the pipeline: a failure to send is logged and reported in the outcome.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

from forex_pipeline.settings import NotificationSettings, SmtpSettings, get_settings

LOGGER_NAME = "forex_pipeline.reporting.notifications"
logger = logging.getLogger(LOGGER_NAME)

EventKind = Literal["queue_complete", "queue_failure", "new_regime_best"]
EVENT_KINDS: tuple[str, ...] = ("queue_complete", "queue_failure", "new_regime_best")
SUBJECT_PREFIX = "[forex-pipeline]"
SMTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Event:
    """Something worth telling a person: its kind, a one-line subject and a plain-text body."""

    kind: EventKind
    subject: str
    body: str

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r} is unknown; known: {', '.join(EVENT_KINDS)}")
        if not self.subject.strip() or "\n" in self.subject or "\r" in self.subject:
            raise ValueError(f"event subject must be one non-empty line, got {self.subject!r}")


@dataclass(frozen=True)
class NotificationOutcome:
    """What `notify` did: whether the event was enabled, logged and e-mailed, and any send error."""

    enabled: bool
    logged: bool = False
    emailed: bool = False
    error: str | None = None


def queue_complete_event(queue_name: str, completed: int, failed: int, kept: int, elapsed_seconds: float) -> Event:
    """The queue worked through every configuration."""
    return Event(
        "queue_complete",
        f"queue {queue_name!r} complete: {completed} trained, {failed} failed, {kept} kept",
        f"Queue {queue_name} finished in {elapsed_seconds:.0f} s.\n"
        f"Completed: {completed}\nFailed: {failed}\nKept models: {kept}\n",
    )


def queue_failure_event(queue_name: str, error: str | None, consecutive_failures: int | None = None) -> Event:
    """The queue stopped on an error (or too many consecutive failures); the subject holds the error's first line."""
    streak = f" after {consecutive_failures} consecutive failures" if consecutive_failures else ""
    text = (error or "").strip() or "no error message recorded"
    return Event(
        "queue_failure",
        f"queue {queue_name!r} failed{streak}: {text.splitlines()[0][:120]}",
        f"Queue {queue_name} failed{streak}.\n\n{text}\n",
    )


def new_regime_best_event(
    regime: str, partition_key: str, score: float, previous_score: float | None, improvement: float | None
) -> Event:
    """A model took rank 1 of a regime; `improvement` = score - previous best score (a Sharpe difference)."""
    previous = "none" if previous_score is None else f"{previous_score:.4f}"
    gain = "" if improvement is None else f" ({improvement:+.4f})"
    relative = (
        f" ({improvement / previous_score:+.1%})"
        if improvement is not None and previous_score is not None and previous_score > 0
        else ""
    )
    return Event(
        "new_regime_best",
        f"new best for regime {regime}: {partition_key} scores {score:.4f}{gain}",
        f"Regime: {regime}\nModel: {partition_key}\nScore (Sharpe): {score:.4f}\n"
        f"Previous best: {previous}\nImprovement: {'n/a' if improvement is None else f'{improvement:+.4f}'}{relative}\n",
    )


class Notifier:
    """Sends events as configured in settings.notifications; never raises on a delivery failure."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: NotificationSettings | None = None) -> "Notifier":
        return cls(settings if settings is not None else get_settings().notifications)

    def enabled_for(self, kind: str) -> bool:
        """Whether events of `kind` are switched on (settings.notifications.on_<kind>)."""
        return bool(getattr(self.settings, f"on_{kind}"))

    def notify(self, event: Event) -> NotificationOutcome:
        """Log the event and e-mail it when SMTP is enabled; delivery errors are logged, not raised."""
        if not self.enabled_for(event.kind):
            return NotificationOutcome(enabled=False)
        logged = False
        if self.settings.log:
            level = logging.WARNING if event.kind == "queue_failure" else logging.INFO
            logger.log(level, "%s: %s", event.kind, event.subject)
            logged = True
        if not self.settings.smtp.enabled:
            return NotificationOutcome(enabled=True, logged=logged)
        try:
            send_email(self.settings.smtp, event)
        except Exception as exc:  # noqa: BLE001 - a notification must never crash the pipeline
            error = f"{type(exc).__name__}: {exc}"
            logger.error("could not e-mail %s notification via %s:%s: %s", event.kind, self.settings.smtp.host, self.settings.smtp.port, error)
            return NotificationOutcome(enabled=True, logged=logged, error=error)
        return NotificationOutcome(enabled=True, logged=logged, emailed=True)


def build_message(smtp: SmtpSettings, event: Event) -> EmailMessage:
    """The e-mail of an event, from smtp.sender to every smtp.recipients address."""
    if not smtp.recipients:
        raise ValueError("notifications.smtp.recipients is empty; add at least one address")
    message = EmailMessage()
    message["Subject"] = f"{SUBJECT_PREFIX} {event.subject}"
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message["X-Forex-Pipeline-Event"] = event.kind
    message.set_content(event.body)
    return message


def send_email(smtp: SmtpSettings, event: Event) -> None:
    """Deliver one event by SMTP (STARTTLS and login when configured); raises on any failure."""
    message = build_message(smtp, event)
    password = None
    if smtp.username:
        password = os.environ.get(smtp.password_env)
        if password is None:
            raise RuntimeError(
                f"notifications.smtp.username is set but the password variable {smtp.password_env} is not in the environment"
            )
    with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS) as client:
        if smtp.use_tls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username and password is not None:
            client.login(smtp.username, password)
        refused = client.send_message(message, from_addr=smtp.sender, to_addrs=list(smtp.recipients))
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)
