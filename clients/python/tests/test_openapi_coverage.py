"""The client follows the service's `/openapi.json`: every operation is
covered by a client method or listed as not covered with a reason, and every
request and answer model has the schema's fields, required the same way,
with the same JSON types. A route or field the service gains or changes
fails here until the client has it."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Literal, Optional, Union, get_args, get_origin

import httpx
import pytest
from typing_extensions import get_type_hints, is_typeddict

import mlhook
from mlhook._operations import COVERED, NOT_COVERED, Operation
from conftest import Service

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec(service: Service) -> dict[str, Any]:
    answer = httpx.get(f"{service.base}/openapi.json")
    answer.raise_for_status()
    return dict(answer.json())


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def test_every_operation_is_covered_or_excused(spec: dict[str, Any]) -> None:
    served = set(operations(spec))
    covered = {(op.method, op.path) for op in COVERED}
    excused = {(op.method, op.path) for op in NOT_COVERED}
    assert not covered & excused, "both covered and excused"
    assert all(op.reason for op in NOT_COVERED)
    assert served - covered - excused == set(), "operations the client does not cover"
    assert (covered | excused) - served == set(), "operations the service no longer has"


def test_every_covered_operation_has_its_client_method() -> None:
    for op in COVERED:
        assert all(callable(method) for method in client_methods(op)), op.client_method


@pytest.mark.parametrize("op", COVERED, ids=lambda op: f"{op.method} {op.path}")
def test_parameters_match(spec: dict[str, Any], op: Operation) -> None:
    declared = operations(spec)[(op.method, op.path)].get("parameters", [])
    query = {p["name"] for p in declared if p["in"] == "query"}
    headers = {p["name"].lower() for p in declared if p["in"] == "header"}
    assert set(op.query) == query
    assert set(op.headers) == headers
    for method in client_methods(op):
        names = set(inspect.signature(method).parameters)
        for name in query - {"cursor"}:
            assert name in names or (name == "limit" and "page_size" in names), (method, name)


@pytest.mark.parametrize("op", COVERED, ids=lambda op: f"{op.method} {op.path}")
def test_request_body_matches(spec: dict[str, Any], op: Operation) -> None:
    declared = operations(spec)[(op.method, op.path)]
    schema = declared.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "schema" not in schema:
        assert op.body is None
        return
    assert op.body is not None, "the service takes a body the client does not model"
    problems = compare(spec, schema["schema"], op.body, op.path + " body", set())
    assert not problems, "\n".join(problems)
    fields = object_fields(spec, schema["schema"])
    assert fields is not None
    for method in client_methods(op):
        parameters = inspect.signature(method).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            continue
        names = {p.name for p in parameters}
        missing = set(fields[0]) - names
        assert missing == set(), f"{op.client_method} cannot send {missing}"


@pytest.mark.parametrize("op", COVERED, ids=lambda op: f"{op.method} {op.path}")
def test_answer_matches(spec: dict[str, Any], op: Operation) -> None:
    responses = operations(spec)[(op.method, op.path)]["responses"]
    success = [r for status, r in responses.items() if status.startswith("2")]
    assert len(success) == 1
    schema = success[0].get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        assert op.response is None
        return
    assert op.response is not None
    problems = compare(spec, schema, op.response, op.path + " answer", set(op.derived_fields))
    assert not problems, "\n".join(problems)


def client_methods(op: Operation) -> list[Any]:
    """The method of each client's resource class that covers `op`."""
    resource, name = op.client_method.split(".")
    return [getattr(cls, name) for cls in resource_classes()[resource]]


@functools.lru_cache(maxsize=None)
def resource_classes() -> dict[str, list[type]]:
    """Each resource attribute's class in `Client` and in `AsyncClient`."""
    url = "http://127.0.0.1:1"
    sync, asynchronous = mlhook.Client(url, "t"), mlhook.AsyncClient(url, "t")
    sync.close()
    names = [n for n, v in vars(sync).items() if not n.startswith("_")]
    return {n: [type(getattr(sync, n)), type(getattr(asynchronous, n))] for n in names}


# ---- schemas and TypedDicts, compared ----


def resolve(spec: dict[str, Any], schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def non_null(spec: dict[str, Any], schema: Any) -> Any:
    """`oneOf: [null, X]` → X."""
    schema = resolve(spec, schema)
    options = schema.get("oneOf") if isinstance(schema, dict) else None
    if options:
        rest = [o for o in options if resolve(spec, o) != {"type": "null"}]
        if len(rest) == 1:
            return resolve(spec, rest[0])
    return schema


def object_fields(spec: dict[str, Any], schema: Any) -> Optional[tuple[dict[str, Any], set[str]]]:
    schema = non_null(spec, schema)
    if not isinstance(schema, dict):
        return None
    if "allOf" in schema:
        properties: dict[str, Any] = {}
        required: set[str] = set()
        for part in schema["allOf"]:
            fields = object_fields(spec, part)
            if fields:
                properties.update(fields[0])
                required |= fields[1]
        return properties, required
    if "properties" in schema:
        return dict(schema["properties"]), set(schema.get("required", []))
    return None


def schema_types(spec: dict[str, Any], schema: Any) -> Optional[set[str]]:
    """The JSON types a schema allows; None for any."""
    schema = resolve(spec, schema)
    if not isinstance(schema, dict):
        return None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            parts = [schema_types(spec, s) for s in schema[key]]
            return None if None in parts else set().union(*parts)  # type: ignore[arg-type]
    if "allOf" in schema:
        return {"object"}
    if "enum" in schema:
        json_type = {str: "string", type(None): "null", bool: "boolean", int: "integer"}
        return {json_type.get(type(v), "number") for v in schema["enum"]}
    kind = schema.get("type")
    if kind is None:
        return None
    return set(kind) if isinstance(kind, list) else {kind}


def annotation_types(annotation: Any) -> Optional[set[str]]:
    """The JSON types a Python annotation allows; None for any."""
    if annotation is Any:
        return None
    origin = get_origin(annotation)
    if origin is Union:
        parts = [annotation_types(a) for a in get_args(annotation)]
        return None if None in parts else set().union(*parts)  # type: ignore[arg-type]
    if annotation is type(None):
        return {"null"}
    if origin is Literal or annotation is str:
        return {"string"}
    simple = {bool: "boolean", int: "integer", float: "number"}
    if annotation in simple:
        return {simple[annotation]}
    if origin is list:
        return {"array"}
    if origin is dict or is_typeddict(annotation):
        return {"object"}
    raise AssertionError(f"unexpected annotation {annotation!r}")


def literal_values(annotation: Any) -> Optional[set[Any]]:
    if get_origin(annotation) is Union:
        for arg in get_args(annotation):
            found = literal_values(arg)
            if found is not None:
                return found
        return None
    return set(get_args(annotation)) if get_origin(annotation) is Literal else None


def enum_values(spec: dict[str, Any], schema: Any) -> Optional[set[Any]]:
    schema = non_null(spec, schema)
    return set(schema["enum"]) if isinstance(schema, dict) and "enum" in schema else None


def inner_model(annotation: Any) -> Any:
    """The TypedDict inside `Optional[X]` or `list[X]`, if any."""
    if get_origin(annotation) in (Union, list):
        for arg in get_args(annotation):
            found = inner_model(arg)
            if found is not None:
                return found
        return None
    return annotation if is_typeddict(annotation) else None


def inner_schema(spec: dict[str, Any], schema: Any) -> Any:
    schema = non_null(spec, schema)
    if isinstance(schema, dict) and "items" in schema:
        return non_null(spec, schema["items"])
    return schema


def compare(
    spec: dict[str, Any], schema: Any, model: Any, where: str, derived: set[str]
) -> list[str]:
    """Every difference between a schema and a TypedDict, nested models too."""
    fields = object_fields(spec, schema)
    if fields is None:
        return [f"{where}: the schema is not an object with properties"]
    properties, required = fields
    hints = get_type_hints(model)
    model_required = set(model.__required_keys__)
    problems = []
    names = set(hints) - derived
    for name in sorted(set(properties) - names):
        problems.append(f"{where}: {model.__name__} lacks the field {name!r}")
    for name in sorted(names - set(properties)):
        problems.append(f"{where}: {model.__name__}.{name} is not in the schema")
    for name in sorted(set(properties) & names):
        at = f"{where}.{name}"
        if (name in required) != (name in model_required):
            problems.append(f"{at}: required {name in required} in the schema")
        wanted = schema_types(spec, properties[name])
        have = annotation_types(hints[name])
        if wanted is not None and have is not None and wanted != have:
            problems.append(f"{at}: JSON types {sorted(have)}, the schema says {sorted(wanted)}")
        enum = enum_values(spec, properties[name])
        if enum is not None and literal_values(hints[name]) not in (None, enum):
            problems.append(f"{at}: values {literal_values(hints[name])}, the schema says {enum}")
        nested = inner_model(hints[name])
        if nested is not None:
            problems += compare(spec, inner_schema(spec, properties[name]), nested, at, set())
    return problems
