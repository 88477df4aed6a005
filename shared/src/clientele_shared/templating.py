"""Personalised messages from user-written templates: Jinja2 in a sandbox, the fields a template
needs found up front (which recipient lacks which field, before anything is sent), an HTML part
escaped and a plain-text part, and Russian names: the salutation ("Уважаемый Иван Петрович") and
declined forms ("Ивану Петровичу") through pytrovich (the petrovich rules). ADR 37.

A template is compiled once against the variables it may use (``variables``: each top-level name
with the fields it knows, or ``None`` when any field may be asked for, as with custom
attributes); a typo or an unknown name is a :class:`TemplateProblem`, not a blank in a letter. A
field the template needs unconditionally is *required*; one read only under ``{% if field %}``,
through ``default(...)`` or an ``is defined`` test is optional. :func:`find_missing` reports each
recipient lacking a required field; rendering uses strict undefined values, so nothing missed is
ever printed as an empty string.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import SandboxedEnvironment
from pytrovich.detector import PetrovichGenderDetector
from pytrovich.enums import Case, NamePart
from pytrovich.enums import Gender as PetrovichGender
from pytrovich.maker import PetrovichDeclinationMaker

MAX_TEMPLATE_CHARS = 200_000
UNSUBSCRIBE_URL = "unsubscribe_url"
_OPTIONAL_FILTERS = frozenset({"default", "d"})
_OPTIONAL_TESTS = frozenset({"defined", "undefined", "none"})
_LINE_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class GrammaticalCase(enum.StrEnum):
    """The cases a template may ask a name in (``person.dative.first_middle``)."""

    GENITIVE = "genitive"
    DATIVE = "dative"
    ACCUSATIVE = "accusative"
    INSTRUMENTAL = "instrumental"
    PREPOSITIONAL = "prepositional"


_CASES = {
    GrammaticalCase.GENITIVE: Case.GENITIVE,
    GrammaticalCase.DATIVE: Case.DATIVE,
    GrammaticalCase.ACCUSATIVE: Case.ACCUSATIVE,
    GrammaticalCase.INSTRUMENTAL: Case.INSTRUMENTAL,
    GrammaticalCase.PREPOSITIONAL: Case.PREPOSITIONAL,
}
_PETROVICH_GENDER = {
    Gender.MALE: PetrovichGender.MALE,
    Gender.FEMALE: PetrovichGender.FEMALE,
    Gender.UNKNOWN: PetrovichGender.ANDROGYNOUS,
}
_NAME_FORMS = ("first_name", "middle_name", "last_name", "first_middle", "full_name")
PERSON_FIELDS: frozenset[str] = frozenset(
    {"first_name", "middle_name", "last_name", "full_name", "first_middle", "gender"}
    | {"salutation"}
    | {case.value for case in GrammaticalCase}
)


# --- Russian names ---------------------------------------------------------------------------


@functools.cache
def _maker() -> PetrovichDeclinationMaker:
    return PetrovichDeclinationMaker()


@functools.cache
def _detector() -> PetrovichGenderDetector:
    return PetrovichGenderDetector()


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@functools.lru_cache(maxsize=65_536)
def _gender_of(first_name: str | None, middle_name: str | None) -> Gender:
    if middle_name:
        found = _detector().detect(middlename=middle_name)  # type: ignore[no-untyped-call]
        if found is not PetrovichGender.ANDROGYNOUS:
            return Gender.MALE if found is PetrovichGender.MALE else Gender.FEMALE
    if first_name:
        found = _detector().detect(firstname=first_name)  # type: ignore[no-untyped-call]
        if found is not PetrovichGender.ANDROGYNOUS:
            return Gender.MALE if found is PetrovichGender.MALE else Gender.FEMALE
    return Gender.UNKNOWN


def detect_gender(
    *, first_name: str | None, middle_name: str | None, recorded: str | None = None
) -> Gender:
    """The person's record when it says; else the patronymic (-ович/-овна, оглы/кызы); else an
    unambiguous first name; else unknown (Саша, Женя, most Latin names)."""
    if recorded in (Gender.MALE, Gender.FEMALE):
        return Gender(recorded)
    return _gender_of(_clean(first_name), _clean(middle_name))


@functools.lru_cache(maxsize=262_144)
def decline(part: str, name: str, gender: Gender, case: GrammaticalCase) -> str:
    """One name part (``first_name``/``middle_name``/``last_name``) in a case; a double name
    declines per component; all-capital input keeps its capitals; what the rules do not know
    (Latin names, indeclinable ones) stays as it is."""
    if not name:
        return name
    name_part = {
        "first_name": NamePart.FIRSTNAME,
        "middle_name": NamePart.MIDDLENAME,
        "last_name": NamePart.LASTNAME,
    }[part]
    shouting = name.isupper() and len(name) > 1
    source = name.title() if shouting else name
    result = _maker().make(name_part, _PETROVICH_GENDER[gender], _CASES[case], source)
    return result.upper() if shouting else result


def _join(*parts: str | None) -> str | None:
    joined = " ".join(part for part in parts if part)
    return joined or None


def salutation(
    *, first_name: str | None, middle_name: str | None, last_name: str | None, gender: Gender
) -> str | None:
    """ "Уважаемый Иван Петрович" / "Уважаемая Анна Сергеевна"; without a patronymic the first
    name and surname; when the gender is unknown "Здравствуйте, Саша Цой". None without a first
    name (a letter cannot address a surname alone politely)."""
    if not first_name:
        return None
    addressed = _join(first_name, middle_name) if middle_name else _join(first_name, last_name)
    if gender is Gender.MALE:
        return f"Уважаемый {addressed}"
    if gender is Gender.FEMALE:
        return f"Уважаемая {addressed}"
    return f"Здравствуйте, {addressed}"


class _NameForms(Mapping[str, str | None]):
    """A person's name in one case, declined when a template asks for a form."""

    def __init__(self, person: PersonFields, case: GrammaticalCase) -> None:
        self._person = person
        self._case = case

    def _part(self, part: str) -> str | None:
        value: str | None = self._person._values[part]
        if value is None:
            return None
        return decline(part, value, self._person.gender, self._case)

    def __getitem__(self, key: str) -> str | None:
        if key in ("first_name", "middle_name", "last_name"):
            return self._part(key)
        if key == "first_middle":
            first = self._part("first_name")
            return _join(first, self._part("middle_name")) if first else None
        if key == "full_name":
            return _join(
                self._part("last_name"), self._part("first_name"), self._part("middle_name")
            )
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_NAME_FORMS)

    def __len__(self) -> int:
        return len(_NAME_FORMS)


class PersonFields(Mapping[str, Any]):
    """A person as a template sees it: the name parts, ``full_name``, ``first_middle``,
    ``gender``, ``salutation`` and the name in each case (``person.dative.first_middle`` →
    "Ивану Петровичу"), declined only when asked for; ``extra`` adds the caller's own fields
    (an address, a position)."""

    def __init__(
        self,
        *,
        first_name: str | None,
        middle_name: str | None,
        last_name: str | None,
        gender: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._first = _clean(first_name)
        self._middle = _clean(middle_name)
        self._last = _clean(last_name)
        self.gender = detect_gender(
            first_name=self._first, middle_name=self._middle, recorded=gender
        )
        self._extra = dict(extra or {})
        self._values: dict[str, Any] = {
            **self._extra,
            "first_name": self._first,
            "middle_name": self._middle,
            "last_name": self._last,
            "full_name": _join(self._last, self._first, self._middle),
            "first_middle": _join(self._first, self._middle) if self._first else None,
            "gender": self.gender.value,
            "salutation": salutation(
                first_name=self._first,
                middle_name=self._middle,
                last_name=self._last,
                gender=self.gender,
            ),
        }

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            pass
        try:
            forms = self._values[key] = _NameForms(self, GrammaticalCase(key))
        except ValueError:
            raise KeyError(key) from None
        return forms

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(PERSON_FIELDS | self._extra.keys()))

    def __len__(self) -> int:
        return len(PERSON_FIELDS | self._extra.keys())


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    """What is wrong with a template itself: ``syntax``, ``unknown_variable``,
    ``unknown_field``, ``too_long`` or ``forbidden``, in which part and line."""

    part: str
    kind: str
    detail: str
    line: int | None = None


class TemplateInvalid(ValueError):
    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(f"{p.part}: {p.detail}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class MissingField:
    """A recipient lacking a value a template needs."""

    recipient: str
    field: str


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str | None
    text: str | None


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
    )
    environment.globals.clear()
    return environment


_HTML = _environment(autoescape=True)
_PLAIN = _environment(autoescape=False)


def _path_of(node: nodes.Node) -> tuple[str, ...] | None:
    """``person.dative.first_name`` / ``attributes["код"]`` as a field path, else None."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        inner = _path_of(node.node)
        return None if inner is None else (*inner, node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _path_of(node.node)
        if inner is None or not isinstance(node.arg.value, str | int):
            return None
        return (*inner, str(node.arg.value))
    return None


@dataclass
class _FieldUse:
    path: tuple[str, ...]
    line: int
    required: bool


class _Collector:
    """Walks a template's syntax tree and notes every field path with whether it is needed
    unconditionally (guards: ``if``/conditional expressions on the same path, ``default``,
    ``is defined``/``is none`` tests)."""

    def __init__(self) -> None:
        self.uses: list[_FieldUse] = []

    def visit(self, node: nodes.Node, guarded: frozenset[tuple[str, ...]], optional: bool) -> None:
        path = (
            _path_of(node) if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem) else None
        )
        if path is not None and not (isinstance(node, nodes.Name) and node.ctx != "load"):
            needed = not optional and not any(path[: len(g)] == g for g in guarded)
            self.uses.append(_FieldUse(path, node.lineno, needed))
            if isinstance(node, nodes.Getitem):
                self.visit(node.arg, guarded, optional)
            return
        if isinstance(node, nodes.If | nodes.CondExpr):
            test_paths = self._paths_in(node.test)
            self.visit(node.test, guarded, optional=True)
            inner = guarded | test_paths
            branch = node.body if isinstance(node, nodes.If) else [node.expr1]
            for child in branch:
                self.visit(child, inner, optional)
            others: list[nodes.Node] = []
            if isinstance(node, nodes.If):
                others = [*node.elif_, *node.else_]
            elif node.expr2 is not None:
                others = [node.expr2]
            for child in others:
                self.visit(child, guarded, optional)
            return
        if isinstance(node, nodes.Filter) and node.name in _OPTIONAL_FILTERS:
            if node.node is not None:
                self.visit(node.node, guarded, optional=True)
            for child in [*node.args, *[kw.value for kw in node.kwargs]]:
                self.visit(child, guarded, optional)
            return
        if isinstance(node, nodes.Test) and node.name in _OPTIONAL_TESTS:
            self.visit(node.node, guarded, optional=True)
            return
        for child in node.iter_child_nodes():
            self.visit(child, guarded, optional)

    @staticmethod
    def _paths_in(node: nodes.Node) -> frozenset[tuple[str, ...]]:
        found = set()
        for candidate in [node, *node.find_all((nodes.Name, nodes.Getattr, nodes.Getitem))]:
            path = _path_of(candidate)
            if path is not None:
                found.add(path)
        return frozenset(found)


@dataclass(frozen=True)
class _Part:
    name: str
    template: Template

    def render(self, context: Mapping[str, Any]) -> str:
        """``Template.render`` without copying the values into a new dict each time (the
        context is only read; the sandbox's checks are in the compiled code either way)."""
        values = context if isinstance(context, dict) else dict(context)
        state = self.template.new_context(values, shared=True)
        return str(self.template.environment.concat(self.template.root_render_func(state)))


def _get(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    return None


def _lookup(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = context
    for key in path:
        value = _get(value, key)
        if value is None:
            return None
    return value


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class MessageTemplate:
    """A compiled message: a subject, an HTML part (escaped) and/or a plain-text part."""

    def __init__(
        self,
        *,
        subject: str,
        html: str | None,
        text: str | None,
        variables: Mapping[str, Collection[str] | None],
    ) -> None:
        problems: list[TemplateProblem] = []
        uses: list[_FieldUse] = []
        self._parts: dict[str, _Part] = {}
        sources = {"subject": subject, "html": html, "text": text}
        if html is None and text is None:
            problems.append(
                TemplateProblem("text", "missing_part", "an HTML or a text part is needed")
            )
        for name, source in sources.items():
            if source is None:
                continue
            environment = _HTML if name == "html" else _PLAIN
            if len(source) > MAX_TEMPLATE_CHARS or "\x00" in source:
                detail = f"longer than {MAX_TEMPLATE_CHARS} characters or holds NUL"
                problems.append(TemplateProblem(name, "too_long", detail))
                continue
            try:
                tree = environment.parse(source)
                compiled = environment.from_string(tree)
            except TemplateSyntaxError as error:
                problems.append(TemplateProblem(name, "syntax", error.message or "", error.lineno))
                continue
            free = find_undeclared_variables(tree)
            collector = _Collector()
            collector.visit(tree, frozenset(), optional=False)
            for use in collector.uses:
                if use.path[0] not in free:
                    continue  # a name the template itself binds (for, set, macro)
                known = variables.get(use.path[0], ())
                if use.path[0] not in variables:
                    detail = f"unknown variable {use.path[0]!r}"
                    problems.append(TemplateProblem(name, "unknown_variable", detail, use.line))
                elif known is not None and len(use.path) > 1 and use.path[1] not in known:
                    detail = f"unknown field {'.'.join(use.path[:2])!r}"
                    problems.append(TemplateProblem(name, "unknown_field", detail, use.line))
                else:
                    uses.append(use)
            self._parts[name] = _Part(name, compiled)
        if problems:
            raise TemplateInvalid(_unique(problems))
        self.fields: frozenset[str] = frozenset(".".join(use.path) for use in uses)
        self.required: tuple[tuple[str, ...], ...] = tuple(
            sorted({use.path for use in uses if use.required})
        )

    def refers_to(self, field: str) -> bool:
        return any(found == field or found.startswith(field + ".") for found in self.fields)

    def missing(self, context: Mapping[str, Any]) -> list[str]:
        """The required fields this recipient's context has no value for."""
        return [".".join(path) for path in self.required if _is_blank(_lookup(context, path))]

    def render(self, context: Mapping[str, Any]) -> RenderedMessage:
        """Renders every part; raises :class:`jinja2.UndefinedError` or
        :class:`jinja2.sandbox.SecurityError` when the context does not fit (callers check
        :meth:`missing` first)."""
        subject = _LINE_BREAKS.sub(" ", self._parts["subject"].render(context)).strip()
        html = self._parts["html"].render(context) if "html" in self._parts else None
        text = self._parts["text"].render(context) if "text" in self._parts else None
        return RenderedMessage(subject=subject, html=html, text=text)


def _unique(problems: list[TemplateProblem]) -> list[TemplateProblem]:
    return list(dict.fromkeys(problems))


def find_missing(
    template: MessageTemplate, recipients: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[MissingField]:
    """Every (recipient, field) pair a send would lack, before anything is sent."""
    return [
        MissingField(recipient=key, field=field)
        for key, context in recipients
        for field in template.missing(context)
    ]


def try_render(
    template: MessageTemplate, context: Mapping[str, Any], *, checked: bool = False
) -> RenderedMessage | str:
    """The rendered message, or why it could not be (a missing field, one found only while
    rendering, a sandbox refusal); ``checked``: the caller found no field missing already."""
    missing = [] if checked else template.missing(context)
    if missing:
        return f"missing field {missing[0]}"
    try:
        return template.render(context)
    except SecurityError as error:
        return f"refused by the sandbox: {error}"
    except Exception as error:  # a user's template may raise anything (division by zero...)
        return f"{type(error).__name__}: {error}"
