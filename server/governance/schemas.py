"""The JSON schemas a tool is listed with: its arguments, and the AgentOutput envelope typed for what it returns.

Both are built once per tool, when its listing is first asked for, and kept. They are written for two readers: a
model (some frameworks put the output schema into every request, so each is kept short: no titles, no defaults,
only the definitions a tool uses) and a framework that converts an input schema to OpenAI's strict mode (every
object closed, every optional argument nullable: see `Args`).
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, Field, create_model

from contracts import AgentOutput, Plan, Provenance

__all__ = ["Returns", "compact", "input_schema", "output_schema"]


@dataclass(frozen=True)
class Returns:
    """What a tool puts in the envelope's open fields when it succeeds (on an error each is null). A field the
    tool never fills is typed null in its schema, so a model is not told to look for it."""

    data: type[BaseModel] | None = None
    """The shape of `data`."""
    plan: bool = False
    """Whether `plan` holds a Plan."""
    llm_response: str | None = None
    """What `llm_response` holds, in a few words, when the tool fills it."""


_DROPPED = frozenset({"title", "default"})


def compact(node: Any, *, dropped: frozenset[str] = _DROPPED) -> Any:
    """`node` without the keywords in `dropped`: pydantic's titles repeat the field names, and an output's defaults
    say nothing a reader of a result needs."""
    if isinstance(node, list):
        return [compact(item, dropped=dropped) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: compact(v, dropped=dropped) for k, v in node.items() if k not in dropped | {"properties", "$defs"}}
    for key in ("properties", "$defs"):  # their keys are names (a field may be called "title"), not keywords
        if key in node:
            out[key] = {name: compact(sub, dropped=dropped) for name, sub in node[key].items()}
    return out


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return _inlined({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    return {key: _inlined(value, defs) for key, value in node.items() if key != "$defs"}


def input_schema(args: type[BaseModel]) -> dict[str, Any]:
    """The arguments' schema, without titles and with every `$ref` replaced by what it names (openai-agents
    refuses to make a tool strict whose input schema holds a reference); defaults are kept, since they say what
    leaving an argument out means."""
    raw = args.model_json_schema()
    schema: dict[str, Any] = compact(_inlined(raw, raw.get("$defs", {})), dropped=frozenset({"title"}))
    return schema


_LLM_FIELDS = ("llm_model", "llm_endpoint_host", "prompt_digest", "usage", "llm_attempts", "llm_finish_reason")
_NULL = (None, None)


@cache
def output_schema(returns: Returns) -> dict[str, Any]:
    """The envelope, with `data`, `plan` and `llm_response` typed as this tool fills them; a tool that asks no
    LLM (it fills no `llm_response`) has null in every field about one."""
    asks_llm = returns.llm_response is not None
    provenance: dict[str, Any] = {} if asks_llm else dict.fromkeys((*_LLM_FIELDS, "llm_structured_output"), _NULL)
    fields: dict[str, Any] = {
        "provenance": (create_model("Provenance", __base__=Provenance, **provenance) | None, None),
        "llm_model": (str | None, None) if asks_llm else _NULL,
        "llm_response": (str | None, Field(default=None, description=returns.llm_response)) if asks_llm else _NULL,
        "plan": (Plan | None, None) if returns.plan else _NULL,
        "data": (returns.data | None, None) if returns.data is not None else _NULL,
    }
    typed = create_model("AgentOutput", __base__=AgentOutput, **fields)
    schema: dict[str, Any] = compact(typed.model_json_schema(mode="serialization"))
    return schema
