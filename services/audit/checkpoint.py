"""Signed checkpoints of the ledger: the auditors' own record of every chain's head.

The hash chains (``streams.chain``) catch an edit, but not someone who rewrites a chain
from the edited row to its head and updates ``consumer_offsets.last_hash`` to match: the
rewritten chain is consistent in itself. A checkpoint closes that gap the way Certificate
Transparency's signed tree heads do: the auditors sign, with an Ed25519 key that never
enters the platform (not the database, not the workers' settings), every chain's head as
they saw it, and keep the signed statement outside PostgreSQL — in a file of their own and
on the Kafka topic ``city.audit-checkpoints.v1``, which only their principal may write.
Any later rewrite of a row at or before a checkpointed head changes the hash a verifier
recomputes up to that head, and contradicts the checkpoint (``services.audit.verify``).

The signed payload (``version`` 1), as canonical JSON (keys sorted, no whitespace, UTF-8):

    {"chains": [{"head": <hex sha256, the chain recomputed from GENESIS up to last_offset>,
                 "incarnation": int, "last_offset": int, "next_offset": int | null,
                 "partition": int, "rows": int, "topic": <full topic name>}, ...],
     "created_at": <ISO 8601, UTC>, "format": "citystream.ledger-checkpoint",
     "key_id": "ed25519:<first 32 hex of sha256(raw public key)>",
     "ledger": {"db_schema": str, "topic_namespace": str}, "rows": int, "version": 1}

``chains`` is sorted by (topic, incarnation, partition). The signature is Ed25519 over
``SIGNING_CONTEXT + canonical(payload)``: the prefix keeps a signature made for anything
else from passing as a checkpoint's. A checkpoint document, on file and on the topic, is
``{"payload": {...}, "signature": "<base64>"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import CityStreamError
from streams.db.cursors import Position
from streams.settings import Settings

FORMAT = "citystream.ledger-checkpoint"
VERSION = 1
SIGNING_CONTEXT = b"citystream ledger checkpoint v1\n"


class CheckpointError(CityStreamError, ValueError):
    """A key or checkpoint file cannot be used; the message says which and why."""


# --------------------------------------------------------------------------- keys


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def generate_key(path: Path) -> tuple[Path, str]:
    """Write a new private key to ``path`` (PKCS#8 PEM, mode 600) and its public key beside
    it (``path`` + ``.pub``); returns (public key path, key id). Never overwrites."""
    public = public_path(path)
    for existing in (path, public):
        if existing.exists():
            raise CheckpointError(
                f"{existing} exists; choose another path (keys are never replaced)"
            )
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public, key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise CheckpointError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 key (`citystream audit keygen` makes one)")
    return key


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """Key id → public key, for the auditors' keys a verifier trusts."""
    found: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as exc:
            raise CheckpointError(f"cannot read the public key {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CheckpointError(f"{path} is not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointError(f"{path} is not an Ed25519 public key")
        found[key_id(key)] = key
    return found


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class ChainHead:
    topic: str
    incarnation: int
    partition: int
    rows: int  # rows of the chain up to and including last_offset
    last_offset: int
    head: bytes  # the chain's hash at last_offset, recomputed from GENESIS
    next_offset: int | None  # consumer_offsets' next offset then (information only)

    @property
    def key(self) -> Position:
        return (self.topic, self.incarnation, self.partition)

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "incarnation": self.incarnation,
            "partition": self.partition,
            "rows": self.rows,
            "last_offset": self.last_offset,
            "head": self.head.hex(),
            "next_offset": self.next_offset,
        }


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read: its payload (not yet trusted), its signature, where it came
    from (a file, or the topic and offset)."""

    payload: Mapping[str, Any]
    signature: bytes
    source: str

    @property
    def key_id(self) -> str:
        return str(self.payload.get("key_id", "?"))

    @property
    def created_at(self) -> str:
        return str(self.payload.get("created_at", "?"))

    @property
    def label(self) -> str:
        """How reports name it: when, by which key, from where."""
        return f"checkpoint {self.created_at} (key {self.key_id}, {self.source})"

    @property
    def ledger(self) -> tuple[str, str]:
        ledger = self.payload.get("ledger") or {}
        return (str(ledger.get("db_schema", "")), str(ledger.get("topic_namespace", "")))

    def chains(self) -> list[ChainHead]:
        return [
            ChainHead(
                topic=str(c["topic"]),
                incarnation=int(c["incarnation"]),
                partition=int(c["partition"]),
                rows=int(c["rows"]),
                last_offset=int(c["last_offset"]),
                head=bytes.fromhex(str(c["head"])),
                next_offset=None if c.get("next_offset") is None else int(c["next_offset"]),
            )
            for c in self.payload["chains"]
        ]


def canonical(payload: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8 (orjson)."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def build_payload(
    *,
    chains: Sequence[ChainHead],
    settings: Settings,
    signer: Ed25519PublicKey,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    ordered = sorted(chains, key=lambda c: c.key)
    when = (created_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "format": FORMAT,
        "version": VERSION,
        "key_id": key_id(signer),
        "created_at": when.isoformat(timespec="microseconds"),
        "ledger": {"db_schema": settings.db_schema, "topic_namespace": settings.topic_namespace},
        "chains": [chain.as_json() for chain in ordered],
        "rows": sum(chain.rows for chain in ordered),
    }


def sign(payload: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The checkpoint document: the payload and its signature, as JSON (sorted, indented
    for a reader; the signature covers ``canonical(payload)``, not these bytes)."""
    signature = key.sign(SIGNING_CONTEXT + canonical(payload))
    document = {"payload": payload, "signature": base64.b64encode(signature).decode()}
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def canonical_document(document: bytes) -> bytes:
    """The document as it goes on the topic: compact, keys sorted."""
    return orjson.dumps(orjson.loads(document), option=orjson.OPT_SORT_KEYS)


def parse(data: bytes, *, source: str) -> Checkpoint:
    """A checkpoint document; CheckpointError if it is not one (malformed)."""
    try:
        document = orjson.loads(data)
        payload = document["payload"]
        signature = base64.b64decode(document["signature"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
        raise CheckpointError(f"{source} is not a checkpoint document: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a {FORMAT} document")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{source} is a checkpoint of version {payload.get('version')!r}; this verifier "
            f"reads version {VERSION}"
        )
    checkpoint = Checkpoint(payload, signature, source)
    try:
        checkpoint.chains()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: a chain entry is malformed ({exc})") from exc
    return checkpoint


def read_files(paths: Iterable[Path]) -> list[Checkpoint | CheckpointError]:
    """Every checkpoint in ``paths`` (files, or folders of ``*.json``), oldest name first;
    a file that is no checkpoint is returned as its error (reported, not fatal)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    found: list[Checkpoint | CheckpointError] = []
    for file in files:
        try:
            found.append(parse(file.read_bytes(), source=str(file)))
        except OSError as exc:
            found.append(CheckpointError(f"cannot read {file}: {exc.strerror}"))
        except CheckpointError as exc:
            found.append(exc)
    return found


Problem = Literal["bad_signature", "unknown_key"]


def check_signature(
    checkpoint: Checkpoint, trusted: Mapping[str, Ed25519PublicKey]
) -> Problem | None:
    """None if a trusted key signed exactly this payload; otherwise what is wrong."""
    key = trusted.get(checkpoint.key_id)
    if key is None:
        return "unknown_key"
    try:
        key.verify(checkpoint.signature, SIGNING_CONTEXT + canonical(checkpoint.payload))
    except InvalidSignature:
        return "bad_signature"
    return None


def file_name(payload: Mapping[str, Any]) -> str:
    when = datetime.fromisoformat(str(payload["created_at"])).strftime("%Y%m%dT%H%M%S%fZ")
    schema = payload["ledger"]["db_schema"]
    return f"checkpoint-{schema}-{when}.json"


def write(document: bytes, payload: Mapping[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(payload)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(document)
    return path


# --------------------------------------------------------------------------- trust


@dataclass(frozen=True)
class Expectation:
    """What one checkpoint signed for one chain."""

    offset: int
    rows: int
    head: bytes
    checkpoint: str  # the checkpoint's label (when, key, source)


FindingKind = Literal[
    "contradicted", "missing", "bad_signature", "unknown_key", "malformed", "other_ledger"
]


@dataclass(frozen=True)
class CheckpointFinding:
    kind: FindingKind
    checkpoint: str  # its label, or the file / topic position for one that is malformed
    detail: str
    chain: str | None = None
    offset: int | None = None
    expected: str = ""
    found: str = ""

    @property
    def fails(self) -> bool:
        """A checkpoint of another ledger is only noted."""
        return self.kind != "other_ledger"


def expectations(
    checkpoints: Iterable[Checkpoint | CheckpointError],
    *,
    settings: Settings,
    trusted: Mapping[str, Any],
) -> tuple[dict[Position, list[Expectation]], list[CheckpointFinding], list[str]]:
    """What the trustworthy checkpoints of this ledger signed, per chain; a finding for each
    checkpoint that is malformed, forged (signature), signed by a key not trusted, or of
    another ledger; the labels of those that will be compared."""
    found: dict[Position, list[Expectation]] = {}
    findings: list[CheckpointFinding] = []
    used: list[str] = []
    ledger = (settings.db_schema, settings.topic_namespace)
    for cp in checkpoints:
        if isinstance(cp, CheckpointError):
            findings.append(CheckpointFinding("malformed", str(cp).split(" ", 1)[0], str(cp)))
            continue
        problem = check_signature(cp, trusted)
        if problem == "unknown_key":
            findings.append(
                CheckpointFinding(
                    "unknown_key",
                    cp.label,
                    f"signed with key {cp.key_id}, which is not one of the auditors' trusted "
                    "keys (--trust): it cannot be told from a forgery",
                )
            )
            continue
        if problem == "bad_signature":
            findings.append(
                CheckpointFinding(
                    "bad_signature",
                    cp.label,
                    f"the signature does not verify with key {cp.key_id}: the checkpoint was "
                    "forged or altered after it was signed",
                )
            )
            continue
        if cp.ledger != ledger:
            findings.append(
                CheckpointFinding(
                    "other_ledger",
                    cp.label,
                    f"a checkpoint of schema {cp.ledger[0]!r}, topic namespace "
                    f"{cp.ledger[1]!r}; this ledger is {ledger[0]!r}, {ledger[1]!r}: not compared",
                )
            )
            continue
        used.append(cp.label)
        for chain in cp.chains():
            found.setdefault(chain.key, []).append(
                Expectation(chain.last_offset, chain.rows, chain.head, cp.label)
            )
    return found, findings, used
