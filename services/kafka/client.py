"""Kafka connections: every client kafka-python makes for CityStream authenticates
(SASL/SCRAM-SHA-512) as one principal of ``streams.settings.PRINCIPALS`` through
:func:`kafka_client`: a department's producer as that department, topic and ACL
administration as ``admin``, the worker's topic checks as ``worker``, audits as
``auditor``. A wrong password is reported as "authentication failed" after ``AUTH_PROBE_S``
(kafka-python itself keeps retrying until its bootstrap timeout, and mostly loses the
broker's SASL error; see ``AUTH_PROBE_S``).

Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``,
``CITYSTREAM_KAFKA_SECURITY_PROTOCOL``, ``CITYSTREAM_KAFKA_<PRINCIPAL>_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import errors as aiokafka_errors
from aiokafka.client import AIOKafkaClient
from aiokafka.helpers import create_ssl_context
from kafka import KafkaAdminClient
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
)

from schemas.errors import CityStreamError
from streams.settings import Settings, password_variable

log = logging.getLogger("citystream.kafka")
# kafka-python warns "Exchanging credentials in the clear" for every SCRAM login over
# SASL_PLAINTEXT. SCRAM never sends the password (a salted proof only), and SASL_PLAINTEXT
# is used on loopback alone (compose: SASL_SSL), so the warning says nothing true here.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)

# A client's first bootstrap attempt lasts this long, the second twice as long, the third
# the rest of the caller's timeout. kafka-python answers a refused SCRAM login only by
# retrying until its bootstrap timeout, and most often does not even log the refusal:
# the broker sends its SASL error and closes the connection right behind it, and
# kafka-python 3.0 reads the close first and drops the reply ("socket disconnected";
# 21 of 22 refusals measured). So an attempt that ends without a logged refusal is
# followed by one aiokafka login (:func:`_sasl_refusal`), which reads the reply before the
# close: a wrong password is reported after one attempt (~3.3 s), every time; an
# unreachable broker still gets the caller's whole timeout. A healthy local broker
# bootstraps in well under 0.1 s. (Each failed attempt of an admin client or consumer
# leaves kafka-python's idle IO thread behind, hence few attempts.)
AUTH_PROBE_S = 3.0


class KafkaAuthenticationError(CityStreamError):
    """The broker refused this principal's credentials (SASL authentication failed)."""


class DeliveryError(CityStreamError):
    """Kafka did not acknowledge an event within the configured time; it was not sent."""


class _AuthFailures(logging.Handler):
    """Remembers the SASL authentication failures a client library logs (kafka-python and
    aiokafka raise none: they log the refusal and go on to "unable to bootstrap")."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        super().__init__(logging.WARNING)
        self.kinds = kinds or (SaslAuthenticationFailedError,)
        self.failures: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.failures.extend(arg for arg in args if isinstance(arg, self.kinds))


def _sasl_refusal(settings: Settings, principal: str) -> BaseException | None:
    """The broker's SASL refusal of ``principal``, asked for with one aiokafka login (see
    ``AUTH_PROBE_S``); None when it logs in, or the broker cannot be reached. Runs its event
    loop in a thread of its own, so that callers inside one (the worker) may call it too."""
    options = settings.kafka_client_options(principal)
    context = None
    if options["security_protocol"] == "SASL_SSL":
        context = create_ssl_context(cafile=options.get("ssl_cafile"))
    watcher = _AuthFailures(aiokafka_errors.SaslAuthenticationFailed)

    async def log_in() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap,
            security_protocol=options["security_protocol"],
            sasl_mechanism=options["sasl_mechanism"],
            sasl_plain_username=options["sasl_plain_username"],
            sasl_plain_password=options["sasl_plain_password"],
            ssl_context=context,
            request_timeout_ms=int(AUTH_PROBE_S * 1000),
        )
        try:
            await asyncio.wait_for(client.bootstrap(), AUTH_PROBE_S)
        except (aiokafka_errors.KafkaError, OSError, TimeoutError):
            pass  # the refusal, if it was one, is in the log
        finally:
            await client.close()

    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addHandler(watcher)
    try:
        probe = threading.Thread(target=asyncio.run, args=(log_in(),), name="sasl-probe")
        probe.start()
        probe.join()
    finally:
        aiokafka_log.removeHandler(watcher)
    return watcher.failures[-1] if watcher.failures else None


_Client = TypeVar("_Client")


def kafka_client(
    factory: Callable[..., _Client],
    settings: Settings,
    principal: str,
    *,
    timeout_s: float,
    **kwargs: Any,
) -> _Client:
    """A kafka-python client (``KafkaProducer``, ``KafkaConsumer``, ``KafkaAdminClient``)
    authenticated as ``principal``.

    Raises MissingCredentials when this process has no password for it,
    KafkaAuthenticationError when the broker refuses the password (after ``AUTH_PROBE_S``
    and one more login, ~3.3 s),
    and kafka-python's KafkaTimeoutError when the broker cannot be
    reached within ``timeout_s``.
    """
    options = settings.kafka_client_options(principal)
    watcher = _AuthFailures()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(watcher)
    started = time.monotonic()
    try:
        attempts = []
        left = timeout_s
        for slice_s in (AUTH_PROBE_S, 2 * AUTH_PROBE_S):
            if left <= slice_s:
                break
            attempts.append(slice_s)
            left -= slice_s
        attempts.append(left)
        for i, attempt_s in enumerate(attempts):
            try:
                return factory(
                    bootstrap_servers=settings.kafka_bootstrap,
                    bootstrap_timeout_ms=max(100, int(attempt_s * 1000)),
                    **options,
                    **kwargs,
                )
            except KafkaTimeoutError as exc:
                failure = (
                    watcher.failures[-1] if watcher.failures else _sasl_refusal(settings, principal)
                )
                if failure is not None:
                    raise KafkaAuthenticationError(
                        f"Kafka at {settings.kafka_bootstrap} refused the credentials of "
                        f"principal {principal!r}: authentication failed "
                        f"({failure}) after {time.monotonic() - started:.1f} s; "
                        f"check {password_variable(principal)}"
                    ) from exc
                if i == len(attempts) - 1:
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises
    finally:
        kafka_log.removeHandler(watcher)


def refusal(exc: BaseException, *, principal: str, what: str) -> str | None:
    """A sentence for an authorisation refusal (no ACL), None for any other error."""
    if isinstance(exc, AuthorizationError) or (
        isinstance(exc, type) and issubclass(exc, AuthorizationError)
    ):
        name = exc.__name__ if isinstance(exc, type) else type(exc).__name__
        return (
            f"Kafka refused principal {principal!r} to {what} ({name}): it has no ACL for "
            "that; see README > Security for what each principal may do"
        )
    return None


def wait_for_broker(settings: Settings, *, principal: str, timeout_s: float) -> str:
    """Return the cluster id once ``principal`` is logged in and a metadata request succeeds.

    TimeoutError when the broker cannot be reached within ``timeout_s``;
    KafkaAuthenticationError when it refuses the credentials; MissingCredentials when this
    process has none for ``principal``.
    """
    try:
        admin = kafka_client(
            KafkaAdminClient,
            settings,
            principal,
            timeout_s=timeout_s,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="citystream-probe",
        )
    except (KafkaError, OSError) as exc:
        raise TimeoutError(str(exc)) from exc
    try:
        cluster: dict[str, Any] = admin.describe_cluster()
        return str(cluster["cluster_id"])
    except (KafkaError, OSError) as exc:
        raise TimeoutError(str(exc)) from exc
    finally:
        admin.close()


def admin_client(settings: Settings, *, timeout_s: float | None = None) -> KafkaAdminClient:
    """An admin client logged in as ``admin`` (topics, ACLs, users)."""
    return kafka_client(
        KafkaAdminClient,
        settings,
        "admin",
        timeout_s=timeout_s or settings.producer_timeout_s,
        client_id="citystream-admin",
    )
