"""The one loader of the project's declarative YAML files: table specs, gold entities, projection
specs and expectation suites all go through it.

- One dialect: YAML 1.2 booleans. Only `true`/`false` (any case) are booleans; `on`, `off`, `yes`,
  `no` stay strings (YAML 1.1 would turn a key `on:` or a list-of-values code `N` into booleans).
- Errors name the file, the line and the field: `<file>:<line>: <field>: <message>`, one line per
  problem; an unknown field lists the fields allowed at that place.

    data, root = read_yaml(path, SpecError)                  # the parsed value and its node tree
    spec = validate(TableSpec, data, path, root, SpecError)  # the pydantic model, or SpecError
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
# (error item, root node, field name, line) -> (field name, line): a loader that knows better where
# an error sits (a SQL syntax error inside a block of SQL) moves it there
Relocate = Callable[[dict, yaml.Node, str, int], tuple[str, int]]


class SpecError(ValueError):
    """A declarative file is wrong. The message names the file, the line and the field."""


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2): `on:` stays a key, `yes` a string."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(path: Path, error: type[ValueError] = SpecError) -> tuple[Any, yaml.Node | None]:
    """The file's value and its node tree (for lines); `error` naming the file when it is not YAML."""
    text = path.read_text()
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
        data = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    return data, root


def read_mapping(path: Path, what: str, error: type[ValueError] = SpecError) -> tuple[dict, yaml.Node]:
    """read_yaml for a file that must hold a mapping; `what` describes it in the error
    ("a table spec is a mapping of fields (table, topic, ...)")."""
    data, root = read_yaml(path, error)
    if not isinstance(data, dict) or root is None:
        raise error(f"{path}:1: {what}")
    return data, root


def validate(
    model: type[Model],
    data: Any,
    path: Path,
    root: yaml.Node | None,
    error: type[ValueError] = SpecError,
    relocate: Relocate | None = None,
) -> Model:
    """`model` validated from `data`; on failure `error` with one `file:line: field: message` per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(exc, model, path, root, relocate)) from None


def describe(
    exc: ValidationError,
    model: type[BaseModel],
    path: Path,
    root: yaml.Node | None,
    relocate: Relocate | None = None,
    prefix: tuple = (),
) -> str:
    """One `file:line: field: message` line per validation error. `prefix`: where `model`'s data sits
    in the file (e.g. the entity's key in a file holding several)."""
    lines = []
    for item in exc.errors():
        loc = tuple(item["loc"])
        field_name = ".".join(str(part) for part in (*prefix, *loc)) or "(spec)"
        line = line_of(root, (*prefix, *loc))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field (allowed: {', '.join(allowed_fields(model, loc[:-1]))})"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif relocate is not None and root is not None:
            field_name, line = relocate(item, root, field_name, line)
        lines.append(f"{path}:{line}: {field_name}: {message}")
    return "\n".join(lines)


def allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names (aliases where set) of the model found at `loc` under `model`."""
    candidates: list[Any] = [model]
    for part in loc:
        found: list[Any] = []
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                field = candidate.model_fields.get(str(part))
                if field is not None:
                    found += _flattened(field.annotation)
            else:  # a list, dict or union: its item types
                found += [t for arg in typing.get_args(candidate) for t in _flattened(arg)]
        candidates = found
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if not models:
        return []
    return [field.alias or name for name, field in models[0].model_fields.items()]


def _flattened(annotation: Any) -> list[Any]:
    """An annotation and, for unions and Annotated, the types inside it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flattened(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _flattened(arg)]
    return [annotation]


def node_at(root: yaml.Node | None, loc: tuple) -> yaml.Node | None:
    """The YAML node at `loc` (mapping keys and sequence indexes), None when it does not exist."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node


def line_of(root: yaml.Node | None, loc: tuple) -> int:
    """1-based line of the deepest YAML node on `loc` that exists (the file's first line if none)."""
    node, line = root, 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_folder(folder: Path, load_one: Callable[[Path], Model]) -> list[tuple[Path, Model]]:
    """Every `*.yaml` file of a folder, loaded by `load_one`, in file-name order."""
    return [(path, load_one(path)) for path in sorted(folder.glob("*.yaml"))]


def refuse_duplicates(
    loaded: list[tuple[Path, Model]],
    label: str,
    value_of: Callable[[Model], str],
    field_of: Callable[[Model], str],
    error: type[ValueError] = SpecError,
) -> None:
    """`error` naming both files and lines when two files give the same `value_of` (called `label`);
    `field_of` names the field that sets it, for the line."""

    def where(path: Path, model: Model) -> str:
        return f"{path}:{line_of(read_yaml(path, error)[1], (field_of(model),))}"

    seen: dict[str, tuple[Path, Model]] = {}
    for path, model in loaded:
        value = value_of(model)
        if value in seen:
            raise error(f"{where(path, model)}: {label} {value!r} is already used by {where(*seen[value])}")
        seen[value] = (path, model)
