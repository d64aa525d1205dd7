"""Every codec a producer may use is decodable by every reader, and a record that still
cannot be decoded is reported as exactly that (issue 12, item 7). No socket is opened:
record batches are built and parsed with kafka-python's own record code.

The end-to-end half (records of each codec through a real worker and `audit replay
--source kafka`, and the CLI without a codec's library) is
tests/integration/test_codecs.py.
"""

from __future__ import annotations

import struct

import kafka.codec
import pytest
from aiokafka import codec as aiokafka_codec
from kafka.errors import UnsupportedCodecError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from services.kafka.reader import (
    CODEC_PACKAGES,
    KafkaReadError,
    UndecodableRecordError,
    undecodable,
)

CODECS = {
    "gzip": DefaultRecordBatch.CODEC_GZIP,
    "snappy": DefaultRecordBatch.CODEC_SNAPPY,
    "lz4": DefaultRecordBatch.CODEC_LZ4,
    "zstd": DefaultRecordBatch.CODEC_ZSTD,
}
# What kafka/codec.py imported for each codec; None is what it holds when the import failed.
LIBRARY_ATTRIBUTES = {"snappy": ("snappy",), "lz4": ("lz4", "lz4f", "lz4framed"), "zstd": ("zstd",)}
VALUE = b'{"event_type": "heating.area_connected", "project": "estate 12"}'


def _batch(codec: int, records: int = 20) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset in range(records):
        builder.append(offset, timestamp=1_725_000_000_000, key=None, value=VALUE, headers=[])
    return builder.build()


def _values(buffer: bytearray) -> list[bytes]:
    return [record.value for record in DefaultRecordBatch(bytes(buffer))]


@pytest.mark.parametrize("name", sorted(CODECS))
def test_kafka_python_decodes_every_codec(name: str) -> None:
    """What `audit replay --source kafka` reads with: the libraries pyproject requires."""
    batch = _batch(CODECS[name])
    assert DefaultRecordBatch(bytes(batch)).compression_type == CODECS[name]  # really compressed
    assert _values(batch) == [VALUE] * 20


def test_the_worker_client_has_every_codec() -> None:
    """aiokafka (the worker) decodes snappy, lz4 and zstd with cramjam."""
    assert aiokafka_codec.has_gzip()
    assert aiokafka_codec.has_snappy() and aiokafka_codec.has_lz4() and aiokafka_codec.has_zstd()
    for name in ("snappy", "lz4", "zstd"):
        compress = getattr(aiokafka_codec, f"{name}_encode")
        decompress = getattr(aiokafka_codec, f"{name}_decode")
        assert decompress(compress(VALUE * 10)) == VALUE * 10


@pytest.mark.parametrize("name", sorted(LIBRARY_ATTRIBUTES))
def test_a_codec_whose_library_is_missing_is_named_with_the_record(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _batch(CODECS[name])
    # kafka/codec.py holds None where its import failed: this is an install without the library.
    for attribute in LIBRARY_ATTRIBUTES[name]:
        monkeypatch.setattr(kafka.codec, attribute, None)
    with pytest.raises(UnsupportedCodecError) as raised:
        _values(batch)

    error = undecodable(raised.value, topic="city.heating.v1", partition=2, offset=17)
    assert isinstance(error, KafkaReadError)  # callers that catch the base still stop
    assert (error.codec, error.topic, error.partition, error.offset) == (
        name,
        "city.heating.v1",
        2,
        17,
    )
    message = str(error)
    assert message.startswith("cannot decode the record at city.heating.v1[2] offset 17: ")
    assert f"compressed with {name}" in message
    assert f"install the package {CODEC_PACKAGES[name]!r}" in message and "make install" in message
    assert "reach" not in message


def test_a_codec_kafka_python_does_not_know_is_named_with_the_record() -> None:
    batch = _batch(DefaultRecordBatch.CODEC_NONE)
    # Attribute bits 0-2 are the codec; 5 is none Kafka defines today. Parsing does not
    # check the CRC, so this is a batch as a newer producer might write it.
    attributes_at = DefaultRecordBatch.ATTRIBUTES_OFFSET
    (attributes,) = struct.unpack_from(">h", batch, attributes_at)
    struct.pack_into(">h", batch, attributes_at, (attributes & ~0x07) | 5)
    with pytest.raises(UnsupportedCodecError) as raised:
        _values(batch)

    error = undecodable(raised.value, topic="city.parking.v1", partition=0, offset=3)
    assert error.codec == "type 5"
    assert str(error).startswith("cannot decode the record at city.parking.v1[0] offset 3: ")
    assert "does not know" in str(error)


def test_without_a_location_it_still_names_the_codec() -> None:
    exc = UnsupportedCodecError("Libraries for zstd compression codec not found")
    error = undecodable(exc, topic="city.heating.v1")
    assert isinstance(error, UndecodableRecordError)
    assert str(error).startswith("cannot decode a record of city.heating.v1: ")
    assert (error.codec, error.partition, error.offset) == ("zstd", None, None)
    assert str(undecodable(exc)).startswith("cannot decode a record: ")
