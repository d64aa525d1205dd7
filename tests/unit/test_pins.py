"""The worker changes faust (and reaches into aiokafka) at a few named points
(``streams.consumer``, ``streams.app``). Those names are not public API: this pins the
versions the project was measured with and checks that every name overridden or used still
exists where it is expected, so an upgrade fails here, not in production."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import aiokafka
import faust
import psycopg
from aiokafka.consumer import consumer as aiokafka_consumer
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust import worker as faust_worker
from faust.tables import manager as faust_tables
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from psycopg.adapt import AdaptersMap
from psycopg.dbapi20 import BinaryBinaryDumper
from psycopg.pq import Format
from psycopg.types.string import BytesBinaryDumper

from streams.app import WorkerFaustApp, _NoTables
from streams.consumer import Transport, _BatchingConsumer, _ConsumerThread, _PartitionRecords


def test_the_pinned_versions_are_installed() -> None:
    assert version("faust-streaming") == "0.15.3"
    assert version("aiokafka") == "0.14.0"


def test_every_overridden_name_exists_on_the_class_it_overrides() -> None:
    overridden = {
        _BatchingConsumer: ("seek_to_committed", "_drain_messages", "_new_consumer_thread"),
        _ConsumerThread: ("_create_worker_consumer",),
        WorkerFaustApp: ("_new_transport",),
        _NoTables: ("on_start",),
        _PartitionRecords: ("_consumer_record",),
    }
    for cls, names in overridden.items():
        base = cls.__mro__[1]
        for name in names:
            assert name in cls.__dict__, f"{cls.__name__} no longer overrides {name}"
            assert callable(getattr(base, name, None)), f"{base.__name__}.{name} is gone"
    assert Transport.Consumer is _BatchingConsumer


def test_the_table_manager_start_skipped_is_the_pause_and_what_follows_it() -> None:
    # _NoTables.on_start runs faust's start without its one-second pause; if faust's start
    # does more than this, the override must do it too.
    source = inspect.getsource(faust_tables.TableManager.on_start)
    body = [line.strip() for line in source.splitlines()[1:] if line.strip()]
    assert body == [
        '"""Call when table manager is starting."""',
        "await self.sleep(1.0)",
        "if not self.should_stop:",
        "await self._update_channels()",
        "await self.recovery.start()",
    ]
    assert WorkerFaustApp.__mro__[1] is faust.App


def test_a_worker_without_a_spinner_leaves_the_root_logger_at_its_level() -> None:
    # streams.worker sets Worker.spinner to None: faust then neither adds its handler nor
    # lowers the root logger to DEBUG (which made every debug call in aiokafka build a record).
    source = inspect.getsource(faust_worker.Worker._setup_spinner_handler)
    body = [line.strip() for line in source.splitlines()[1:] if line.strip()]
    assert body[0] == "if self.spinner:"
    assert body[-1] == "logger.setLevel(logging.DEBUG)"
    assert "self._setup_spinner_handler(logger, level)" in inspect.getsource(
        faust_worker.Worker.on_setup_root_logger
    )


def test_the_names_the_overrides_call_exist() -> None:
    for name in ("getmany", "seek", "seek_wait", "_commit", "assignment", "highwaters"):
        assert hasattr(faust_aiokafka.Consumer, name), name
    assert hasattr(faust_aiokafka.AIOKafkaConsumerThread, "topic_partitions")
    # faust's per-record loop the batch hand-over replaces.
    assert "_drain_messages" in inspect.getsource(faust_consumer.Consumer)
    # read_committed: aiokafka keeps the isolation level in this attribute until start().
    source = inspect.getsource(aiokafka.AIOKafkaConsumer)
    assert "self._isolation_level = isolation_level" in source
    assert "isolation_level=self._isolation_level" in source
    assert issubclass(WorkerFaustApp, faust.App)


def test_what_the_batched_fetch_and_its_consumer_rely_on_exists() -> None:
    # streams.consumer._fetch: faust's getmany, its checks made once per partition.
    source = inspect.getsource(faust_consumer.Consumer.getmany)
    for name in (
        "_wait_next_records",
        "consumer_generation_id",
        "_buffered_partitions",
        "track_tp_end_offset",
        "perform_seek",
        "flow_active",
    ):
        assert name in source, name
    # The fetch wait the worker's consumer shortens: an attribute until start().
    source = inspect.getsource(aiokafka.AIOKafkaConsumer)
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in source
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source


def test_the_ledger_copy_sends_bytea_fields_through_the_c_dumper() -> None:
    # streams.db.ledger._copy_rows names column types, and psycopg then picks the dumper
    # registered last for bytea: the DB-API Binary wrapper's, a Python call per field.
    oid = psycopg.adapters.types["bytea"].oid
    assert psycopg.adapters.get_dumper_by_oid(oid, Format.BINARY) is BinaryBinaryDumper
    adapters = AdaptersMap(psycopg.adapters)
    adapters.register_dumper(bytes, BytesBinaryDumper)
    chosen = adapters.get_dumper_by_oid(oid, Format.BINARY)
    assert chosen is not BinaryBinaryDumper and chosen.__module__.startswith("psycopg_binary")


def test_the_ledger_copy_writes_rows_as_asynccopy_write_row_does() -> None:
    # streams.db.ledger._copy_rows formats rows with the COPY's formatter and sends its data
    # with the COPY's writer itself, skipping a coroutine per row: what write_row does.
    source = inspect.getsource(psycopg.AsyncCopy.write_row)
    assert "self.formatter.write_row(row)" in source
    assert "await self._write(data)" in source
    assert "self._write = writer.write" in inspect.getsource(psycopg.AsyncCopy.__init__)
    assert "self.writer = writer" in inspect.getsource(psycopg.AsyncCopy.__init__)


def test_the_fetcher_makes_partition_records_by_module_name_with_the_value_deserializer() -> None:
    # streams.consumer swaps aiokafka.consumer.fetcher.PartitionRecords for its subclass,
    # and marks the worker's consumer by its value deserializer, which reaches the fetcher
    # at start and each PartitionRecords from there.
    fetch = inspect.getsource(aiokafka_fetcher.Fetcher)
    assert "partition_records = PartitionRecords(" in fetch
    assert "self._value_deserializer," in fetch
    start = inspect.getsource(aiokafka_consumer.AIOKafkaConsumer.start)
    assert "value_deserializer=self._value_deserializer" in start
    init = inspect.getsource(aiokafka_consumer.AIOKafkaConsumer.__init__)
    assert "self._value_deserializer = value_deserializer" in init
    records = inspect.getsource(aiokafka_fetcher.PartitionRecords)
    assert "self._value_deserializer = value_deserializer" in records
    assert "consumer_record = self._consumer_record(tp, record)" in records
