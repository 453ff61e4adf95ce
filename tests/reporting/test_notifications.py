"""Notifier: log line, real SMTP delivery to a local aiosmtpd server, and failures that never raise."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from forex_pipeline.reporting.notifications import (
    LOGGER_NAME,
    Event,
    Notifier,
    new_regime_best_event,
    queue_complete_event,
    queue_failure_event,
)
from forex_pipeline.settings import NotificationSettings, SmtpSettings


class _Collector:
    """aiosmtpd handler that keeps every received envelope."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd hook
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def smtp_server() -> Iterator[tuple[int, _Collector]]:
    from aiosmtpd.controller import Controller

    collector = _Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, collector
    finally:
        controller.stop()


def _settings(**smtp: object) -> NotificationSettings:
    return NotificationSettings(smtp=SmtpSettings(**smtp))


def test_log_line_names_the_event(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(_settings())
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        outcome = notifier.notify(queue_complete_event("demo", completed=7, failed=1, kept=2, elapsed_seconds=93))
    assert outcome.enabled and outcome.logged and not outcome.emailed
    records = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert "queue_complete" in records[0].getMessage() and "7 trained, 1 failed, 2 kept" in records[0].getMessage()


def test_failure_is_logged_as_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        Notifier(_settings()).notify(queue_failure_event("demo", "RuntimeError: boom\ntraceback", consecutive_failures=5))
    [record] = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert record.levelno == logging.WARNING
    assert "after 5 consecutive failures: RuntimeError: boom" in record.getMessage()


def test_failure_without_message_still_notifies() -> None:
    event = queue_failure_event("demo", None, consecutive_failures=None)
    assert event.subject == "queue 'demo' failed: no error message recorded"
    assert Notifier(_settings()).notify(event).logged


def test_disabled_kind_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(NotificationSettings(on_new_regime_best=False))
    with caplog.at_level(logging.DEBUG, logger=LOGGER_NAME):
        outcome = notifier.notify(new_regime_best_event("calm_ranging", "K|M", 1.5, None, None))
    assert not outcome.enabled and not outcome.logged
    assert not [r for r in caplog.records if r.name == LOGGER_NAME]


def test_email_arrives_with_subject_and_recipients(smtp_server: tuple[int, _Collector]) -> None:
    port, collector = smtp_server
    notifier = Notifier(
        _settings(enabled=True, port=port, sender="fp@example.org", recipients=["a@example.org", "b@example.org"])
    )
    event = new_regime_best_event("bull_trending", "EURUSD-1h-d365-aaaa|rf-none-h5-bbbb", 1.8, 1.2, 0.6)
    outcome = notifier.notify(event)
    assert outcome.emailed and outcome.error is None
    deadline = time.monotonic() + 5
    while not collector.envelopes and time.monotonic() < deadline:
        time.sleep(0.02)
    [(mail_from, rcpt_tos, message)] = collector.envelopes
    assert mail_from == "fp@example.org"
    assert sorted(rcpt_tos) == ["a@example.org", "b@example.org"]
    assert message["Subject"] == "[forex-pipeline] new best for regime bull_trending: EURUSD-1h-d365-aaaa|rf-none-h5-bbbb scores 1.8000 (+0.6000)"
    assert message["X-Forex-Pipeline-Event"] == "new_regime_best"
    assert "Previous best: 1.2000\nImprovement: +0.6000 (+50.0%)" in message.get_content().replace("\r\n", "\n")


def test_unreachable_server_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(_settings(enabled=True, port=_free_port(), recipients=["a@example.org"]))
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        outcome = notifier.notify(queue_complete_event("demo", 1, 0, 1, 1.0))
    assert outcome.logged and not outcome.emailed
    assert outcome.error is not None and "ConnectionRefusedError" in outcome.error
    assert any(r.levelno == logging.ERROR and "could not e-mail" in r.getMessage() for r in caplog.records)


def test_missing_password_variable_is_reported_not_raised(
    smtp_server: tuple[int, _Collector], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, collector = smtp_server
    monkeypatch.delenv("FP_TEST_SMTP_PASSWORD", raising=False)
    notifier = Notifier(
        _settings(enabled=True, port=port, recipients=["a@example.org"], username="u", password_env="FP_TEST_SMTP_PASSWORD")
    )
    outcome = notifier.notify(queue_complete_event("demo", 1, 0, 1, 1.0))
    assert not outcome.emailed and "FP_TEST_SMTP_PASSWORD" in (outcome.error or "")
    assert collector.envelopes == []


def test_no_recipients_is_reported_not_raised() -> None:
    outcome = Notifier(_settings(enabled=True, port=_free_port())).notify(queue_complete_event("demo", 1, 0, 1, 1.0))
    assert not outcome.emailed and "recipients is empty" in (outcome.error or "")


def test_event_refuses_unknown_kind_and_multiline_subject() -> None:
    with pytest.raises(ValueError, match="unknown"):
        Event("queue_paused", "s", "b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one non-empty line"):
        Event("queue_complete", "a\nBcc: x@example.org", "b")
