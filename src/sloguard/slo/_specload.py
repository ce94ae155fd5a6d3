"""Read SLO spec files in any supported format into :class:`SLODefinition`.

Each YAML document is recognised on its own, so one file may mix formats:
``apiVersion: sloguard.dev/v1`` is the native format, ``apiVersion:
openslo/v1`` (or a list of such objects) is OpenSLO, ``version:
prometheus/v1`` is Sloth. OpenSLO references resolve across every document
of every file given. Directories are searched for ``*.yaml`` / ``*.yml``.

Every problem names its place: ``slo/checkout.yaml:7: spec.objective: must
be between 0 and 100 (exclusive)``. YAML floats are read as
:class:`~decimal.Decimal` from their text, so ``99.95`` stays exact, and a
key given twice in one mapping is an error rather than silently dropped.

The format modules find problems by path inside a document (:class:`Issue`)
and raise :class:`DocumentInvalid`; this module turns paths into lines.
Exceptions::

    SpecError            a spec file, document or field is invalid (.problems)
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self, TypeAlias, TypeVar, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from sloguard._yamlpos import line_of as _line_of
from sloguard.slo._model import FileSource, SLODefinition, exact_decimal, parse_duration

__all__ = ["SpecError", "SpecProblem", "load_slo_files", "validate_paths"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Loc: TypeAlias = tuple[str | int, ...]
ExactNumber = Annotated[Decimal, BeforeValidator(exact_decimal)]


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a duration like 30d, 1h30m or 5m")
    return parse_duration(value)


DurationText = Annotated[timedelta, BeforeValidator(_duration)]


def _text(value: object) -> object:
    """Label values are strings; a bare ``2`` or ``true`` in YAML means the same text."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (int, Decimal)) else value


LabelText = Annotated[str, BeforeValidator(_text)]

SUFFIXES = (".yaml", ".yml")
NATIVE_API = "sloguard.dev/v1"
OPENSLO_API = "openslo/v1"
SLOTH_VERSION = "prometheus/v1"


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """``slo/checkout.yaml:7: spec.objective: must be between 0 and 100 (exclusive)``."""

    path: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class SpecError(Exception):
    """Invalid SLO spec input; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# -- the vocabulary the format modules share ------------------------------------


class SpecModel(BaseModel):
    """A document part: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OneOf(SpecModel):
    """A choice between alternatives: exactly one of the fields is given."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        fields = type(self).model_fields
        if sum(getattr(self, name) is not None for name in fields) != 1:
            keys = [field.alias or name for name, field in fields.items()]
            raise ValueError(f"needs exactly one of {', '.join(keys[:-1])} or {keys[-1]}")
        return self


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem at ``loc`` in a document; ``doc`` None means the one being read."""

    loc: Loc
    message: str
    doc: object = None


class DocumentInvalid(Exception):
    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(f"{render_loc(i.loc)}: {i.message}" for i in self.issues))


class Issues:
    """Collects issues across independent checks, so one run reports them all."""

    def __init__(self) -> None:
        self.found: list[Issue] = []

    def attempt(self, check: Callable[[], T]) -> T | None:
        """``check()``, or None (its issues kept) when it raises DocumentInvalid."""
        try:
            return check()
        except DocumentInvalid as exc:
            self.found.extend(exc.issues)
            return None

    def raise_any(self) -> None:
        if self.found:
            raise DocumentInvalid(self.found)


def fail(loc: Loc, message: str) -> DocumentInvalid:
    return DocumentInvalid([Issue(loc, message)])


def build(loc: Loc, factory: Callable[..., T], /, **kwargs: Any) -> T:
    """``factory(**kwargs)``, a model invariant's ValueError placed at ``loc``."""
    try:
        return factory(**kwargs)
    except ValueError as exc:
        raise fail(loc, str(exc)) from None


def checked(model: type[M], data: object, loc: Loc = ()) -> M:
    """Validate ``data`` against a document model; errors become issues under ``loc``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [
            Issue(loc + tuple(error["loc"]), _message(model, error))
            for error in exc.errors(include_url=False)
        ]
        raise DocumentInvalid(issues) from None


def render_loc(loc: Loc) -> str:
    """``("spec", "exclusions", 0, "end")`` → ``spec.exclusions[0].end``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "-"


def _message(model: type[BaseModel], error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _keys_at(model, error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a mapping"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return error["msg"].replace("Input should be", "must be", 1)


def _keys_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the (nested) document model at ``loc`` accepts, for suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = _keys(current)
        if part not in fields:
            return []
        current = _model_in(fields[part])
    return list(_keys(current))


def _keys(model: Any) -> dict[str, Any]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return {}
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        inner = _model_in(arg)
        if inner is not None:
            return inner
    return None


# -- reading files ------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML with exact decimals and no silently duplicated keys."""

    def construct_yaml_float(self, node: yaml.ScalarNode) -> Any:
        text = str(node.value).replace("_", "")
        if ":" in text or text.lstrip("+-").startswith("."):
            return super().construct_yaml_float(node)  # sexagesimal, .inf, .nan
        return Decimal(text)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key.value!r}", key.start_mark
                    )
                seen.add(key.value)
        return super().construct_mapping(node, deep)


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


@dataclass(eq=False, slots=True)
class _Document:
    path: str
    seq: int  # position among every document read, for a stable output order
    node: yaml.Node
    data: Any

    def problem(self, issue: Issue) -> SpecProblem:
        return SpecProblem(
            self.path, _line_of(self.node, issue.loc), render_loc(issue.loc), issue.message
        )


def _files(paths: Iterable[str | os.PathLike[str]], problems: list[SpecProblem]) -> list[Path]:
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(".")
            )
            if not found:
                problems.append(SpecProblem(str(path), None, "-", "no *.yaml or *.yml files"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(SpecProblem(str(path), None, "-", "no such file or directory"))
    return files


def _documents(file: Path, seq: int, problems: list[SpecProblem]) -> list[_Document]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(SpecProblem(str(file), None, "-", f"cannot read: {exc}"))
        return []
    try:
        nodes = [node for node in yaml.compose_all(text, Loader=_Loader) if node is not None]
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(file, exc))
        return []
    documents: list[_Document] = []
    for node in nodes:  # a bad value spoils its own document only
        try:
            data = _Loader("").construct_document(node)
        except yaml.YAMLError as exc:
            problems.append(_yaml_problem(file, exc))
            continue
        documents.append(_Document(str(file), seq + len(documents), node, data))
    return documents


def _yaml_problem(file: Path, exc: yaml.YAMLError) -> SpecProblem:
    mark = getattr(exc, "problem_mark", None)
    line = None if mark is None else mark.line + 1
    problem = getattr(exc, "problem", None) or str(exc)
    return SpecProblem(str(file), line, "-", f"invalid YAML: {problem}")


# -- putting it together ------------------------------------------------------------


def load_slo_files(
    paths: Iterable[str | os.PathLike[str]], *, sloth_window: timedelta = timedelta(days=30)
) -> list[SLODefinition]:
    """Every SLO in ``paths`` (files or directories), in file and document order.

    Raises :class:`SpecError` listing every problem. ``sloth_window`` is the
    period given to Sloth specs, which do not state one (Sloth's default, 30d).
    """
    definitions, problems = _load(paths, sloth_window)
    if problems:
        raise SpecError(problems)
    return definitions


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> list[SpecProblem]:
    """Every problem in ``paths``; empty means they load (``sloguard slo validate``)."""
    return _load(paths, timedelta(days=30))[1]


_Located: TypeAlias = tuple[SLODefinition, _Document, Loc]


def _load(
    paths: Iterable[str | os.PathLike[str]], sloth_window: timedelta
) -> tuple[list[SLODefinition], list[SpecProblem]]:
    # The format modules import this module's vocabulary, so they load here.
    from sloguard.slo._native import parse_native
    from sloguard.slo._openslo import OpenSLOObject, resolve_openslo
    from sloguard.slo._sloth import parse_sloth

    problems: list[SpecProblem] = []
    found: list[_Located] = []
    openslo: list[OpenSLOObject] = []
    documents: list[_Document] = []
    for file in _files(paths, problems):
        documents.extend(_documents(file, len(documents), problems))
    for doc in documents:
        if doc.data is None:  # an empty document, or only comments
            continue
        kind = _format_of(doc.data)
        if kind == "openslo":
            items = doc.data if isinstance(doc.data, list) else [doc.data]
            listed = isinstance(doc.data, list)
            openslo.extend(
                OpenSLOObject(doc, (i,) if listed else (), item) for i, item in enumerate(items)
            )
            continue
        try:
            if kind == "native":
                parsed = parse_native(doc.data)
            elif kind == "sloth":
                parsed = parse_sloth(doc.data, window=sloth_window)
            else:
                raise DocumentInvalid([Issue((), kind)])
        except DocumentInvalid as exc:
            problems.extend(doc.problem(issue) for issue in exc.issues)
            continue
        found.extend((_anchored(definition, doc), doc, loc) for definition, loc in parsed)
    if openslo:
        resolved, issues = resolve_openslo(openslo)
        found.extend(
            (_anchored(d, doc), doc, loc) for d, doc, loc in resolved if isinstance(doc, _Document)
        )
        problems.extend(
            issue.doc.problem(issue)
            for issue in dict.fromkeys(issues)
            if isinstance(issue.doc, _Document)
        )
    definitions = _unique(found, problems)
    problems.sort(key=lambda p: (p.path, p.line or 0))
    return definitions, problems


def _anchored(definition: SLODefinition, doc: _Document) -> SLODefinition:
    """A relative history-file path is relative to the spec file that names it."""
    source = definition.source
    if not isinstance(source, FileSource) or Path(source.path).is_absolute():
        return definition
    path = str(Path(doc.path).parent / source.path)
    return dataclasses.replace(definition, source=dataclasses.replace(source, path=path))


def _format_of(data: Any) -> str:
    """``native``, ``openslo``, ``sloth``, or the reason it is none of them."""
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        if all(item.get("apiVersion") == OPENSLO_API for item in data):
            return "openslo"
        return f"a list of objects must all have apiVersion {OPENSLO_API}"
    if not isinstance(data, dict):
        return "a document must be a mapping"
    api, version = data.get("apiVersion"), data.get("version")
    if api == NATIVE_API:
        return "native"
    if api == OPENSLO_API:
        return "openslo"
    if version == SLOTH_VERSION:
        return "sloth"
    if isinstance(api, str) and api.startswith("openslo/"):
        return f"apiVersion {api!r} is not supported; sloguard reads {OPENSLO_API}"
    return (
        f"unknown spec format: expected apiVersion {NATIVE_API}, apiVersion {OPENSLO_API} "
        f"or version {SLOTH_VERSION}"
    )


def _unique(found: list[_Located], problems: list[SpecProblem]) -> list[SLODefinition]:
    found.sort(key=lambda item: (item[1].seq, _line_of(item[1].node, item[2]) or 0))
    first: dict[str, str] = {}
    result = []
    for definition, doc, loc in found:
        origin = f"{doc.path}:{_line_of(doc.node, loc)}"
        if definition.name in first:
            message = f"duplicate SLO name {definition.name!r} (also at {first[definition.name]})"
            problems.append(doc.problem(Issue(loc, message)))
            continue
        first[definition.name] = origin
        result.append(dataclasses.replace(definition, origin=origin))
    return result
