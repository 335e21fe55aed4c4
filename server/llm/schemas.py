"""The JSON schema a reply is asked to follow (`response_format: json_schema`), in the strict form endpoints accept.

Strict structured outputs (OpenAI, and the grammar engines of vLLM and Ollama) want every property required,
no additional properties, no `$ref`, no defaults and no string-length rules. Pydantic still validates the
full contract afterwards, so nothing is lost by leaving a rule out of what the endpoint is shown.
"""

from functools import cache
from typing import Any

from pydantic import BaseModel

__all__ = ["response_format"]

_UNSUPPORTED = frozenset({"default", "title", "minLength", "maxLength", "examples"})


def _strict(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _strict({**target, **extra}, defs)
    out = {k: _strict(v, defs) for k, v in node.items() if k not in _UNSUPPORTED | {"$defs", "properties"}}
    if "properties" in node:  # its keys are field names (a field may be called "title"), not keywords
        out["properties"] = {name: _strict(sub, defs) for name, sub in node["properties"].items()}
        out["required"] = list(node["properties"])
        out["additionalProperties"] = False
    return out


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    strict: dict[str, Any] = _strict(raw, raw.get("$defs", {}))
    return strict


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The `response_format` argument that asks the endpoint for JSON matching `model`."""
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__.lower(), "strict": True, "schema": _schema(model)},
    }
