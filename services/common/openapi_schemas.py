"""Models an OpenAPI document names by `$ref` though no route returns them as JSON (the lines of
an NDJSON answer, say): FastAPI documents only the models of `application/json` answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"


def document_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put each model's JSON Schema, and those of the models it holds, under the app's
    `components/schemas`, where FastAPI's own go; one it already documents is left as it is."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template=_REF, mode="serialization")
            for name, held in schema.pop("$defs", {}).items():
                schemas.setdefault(name, held)
            schemas.setdefault(model.__name__, schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
