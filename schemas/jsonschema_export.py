"""JSON Schema (draft 2020-12) of every event type, for departments that validate before
they send: ``schemas/jsonschema/<event_type>.json``.

Regenerate with ``python -m schemas.jsonschema_export`` after changing a model;
``tests/unit/test_jsonschema.py`` fails while the committed files differ from a fresh build.

The schemas describe the canonical form. :func:`schemas.validation.decode` is the
authority and accepts a little more (district names besides codes, integers as numeric
strings, text that normalisation repairs); it also applies what a schema cannot say
(not in the future, per-unit ratios, correction bounds per metric).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.corrections import Correction
from schemas.topics import ALL

OUT_DIR = Path(__file__).resolve().parent / "jsonschema"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def build() -> dict[str, dict[str, Any]]:
    """Event type → its JSON Schema."""
    out: dict[str, dict[str, Any]] = {}
    for spec in ALL:
        for event_type, model in spec.by_type.items():
            schema = model.model_json_schema(mode="validation")
            properties = schema["properties"]
            # The model accepts every department so that decode can say "not allowed"
            # rather than "invalid"; the contract of this topic is narrower.
            properties["department"] = {
                "description": f"the sending department; only these may write {spec.name}",
                "enum": sorted(spec.departments),
                "type": "string",
            }
            # A default keeps Python construction short; on the wire it picks the model.
            schema["required"] = sorted({*schema.get("required", ()), "event_type"})
            if issubclass(model, Correction):
                properties["metric"]["enum"] = sorted(model.metrics)
            schema["$schema"] = DIALECT
            schema["$id"] = f"urn:citystream:event:{event_type}:v1"
            schema["x-topic"] = spec.name
            out[event_type] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(path: Path = OUT_DIR) -> list[Path]:
    """Write every schema into ``path``, remove schemas of event types that no longer exist."""
    path.mkdir(parents=True, exist_ok=True)
    schemas = build()
    written = []
    for event_type, schema in schemas.items():
        target = path / f"{event_type}.json"
        target.write_text(render(schema), encoding="utf-8")
        written.append(target)
    for stale in path.glob("*.json"):
        if stale.stem not in schemas:
            stale.unlink()
    return written


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR
    for written in write(target):
        print(written)


if __name__ == "__main__":
    main()
