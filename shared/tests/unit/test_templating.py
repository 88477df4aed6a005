"""The shared template engine: sandbox, fields found up front, escaping, Russian names."""

from __future__ import annotations

from typing import Any

import pytest
from clientele_shared.templating import (
    Gender,
    GrammaticalCase,
    MessageTemplate,
    MissingField,
    PersonFields,
    TemplateInvalid,
    decline,
    detect_gender,
    find_missing,
    try_render,
)
from jinja2 import UndefinedError

VARIABLES: dict[str, Any] = {
    "person": {
        "first_name",
        "middle_name",
        "last_name",
        "full_name",
        "first_middle",
        "salutation",
        "gender",
        "dative",
        "genitive",
    },
    "organization": {"name", "inn"},
    "attributes": None,
    "unsubscribe_url": None,
}


def person(
    first: str | None, middle: str | None, last: str | None, gender: str | None = None
) -> PersonFields:
    return PersonFields(first_name=first, middle_name=middle, last_name=last, gender=gender)


def template(
    subject: str = "Письмо", html: str | None = None, text: str | None = "x"
) -> MessageTemplate:
    return MessageTemplate(subject=subject, html=html, text=text, variables=VARIABLES)


@pytest.mark.parametrize(
    ("first", "middle", "last", "recorded", "expected"),
    [
        ("Иван", "Петрович", "Иванов", None, "Уважаемый Иван Петрович"),
        ("Анна", "Сергеевна", "Салтыкова-Щедрина", None, "Уважаемая Анна Сергеевна"),
        ("Арзу", "Лутфияр кызы", "Алиева", None, "Уважаемая Арзу Лутфияр кызы"),
        ("Саша", None, "Цой", None, "Здравствуйте, Саша Цой"),
        ("Саша", None, "Цой", "female", "Уважаемая Саша Цой"),
        ("John", None, "Smith", None, "Здравствуйте, John Smith"),
        ("John", None, "Smith", "male", "Уважаемый John Smith"),
        ("Женя", "  ", "Ким", None, "Здравствуйте, Женя Ким"),
        (None, None, "Петров", None, None),
    ],
)
def test_salutation(
    first: str | None,
    middle: str | None,
    last: str | None,
    recorded: str | None,
    expected: str | None,
) -> None:
    assert person(first, middle, last, recorded)["salutation"] == expected


def test_gender_from_the_patronymic_wins_over_an_androgynous_first_name() -> None:
    assert detect_gender(first_name="Саша", middle_name="Петровна") is Gender.FEMALE
    assert detect_gender(first_name="Женя", middle_name="Игоревич") is Gender.MALE
    assert detect_gender(first_name="Женя", middle_name=None) is Gender.UNKNOWN
    assert detect_gender(first_name="Иван", middle_name=None, recorded="female") is Gender.FEMALE
    assert detect_gender(first_name="Иван", middle_name=None, recorded="unknown") is Gender.MALE


@pytest.mark.parametrize(
    ("first", "middle", "last", "case", "first_middle", "full_name"),
    [
        ("Иван", "Петрович", "Иванов", "dative", "Ивану Петровичу", "Иванову Ивану Петровичу"),
        (
            "Анна",
            "Сергеевна",
            "Салтыкова-Щедрина",
            "dative",
            "Анне Сергеевне",
            "Салтыковой-Щедриной Анне Сергеевне",
        ),
        ("Пётр", "Ильич", "Чайковский", "genitive", "Петра Ильича", "Чайковского Петра Ильича"),
        ("ИВАН", "ПЕТРОВИЧ", "СИДОРОВ", "dative", "ИВАНУ ПЕТРОВИЧУ", "СИДОРОВУ ИВАНУ ПЕТРОВИЧУ"),
        ("John", None, "Smith", "dative", "John", "Smith John"),
        ("Мария", "Ивановна", "Шевчук", "dative", "Марии Ивановне", "Шевчук Марии Ивановне"),
    ],
)
def test_declined_forms(
    first: str, middle: str | None, last: str, case: str, first_middle: str, full_name: str
) -> None:
    forms = person(first, middle, last)[case]
    assert forms["first_middle"] == first_middle
    assert forms["full_name"] == full_name


def test_decline_a_surname_by_the_recorded_gender() -> None:
    assert decline("last_name", "Цой", Gender.MALE, GrammaticalCase.DATIVE) == "Цою"
    assert decline("last_name", "Цой", Gender.FEMALE, GrammaticalCase.DATIVE) == "Цой"


def test_renders_cyrillic_with_html_escaped_and_text_verbatim() -> None:
    compiled = template(
        subject="{{ person.salutation }}!\r\nBcc: x@evil",
        html="<p>{{ person.salutation }}, {{ organization.name }}</p>",
        text="{{ person.dative.first_middle }}: {{ organization.name }}",
    )
    context = {
        "person": person("Иван", "Петрович", "Иванов"),
        "organization": {"name": "ООО «Рога & <Копыта>»"},
    }
    message = compiled.render(context)
    assert message.subject == "Уважаемый Иван Петрович! Bcc: x@evil"
    assert message.html == "<p>Уважаемый Иван Петрович, ООО «Рога &amp; &lt;Копыта&gt;»</p>"
    assert message.text == "Ивану Петровичу: ООО «Рога & <Копыта>»"


def test_template_problems_are_all_reported_at_compile_time() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        template(
            subject="{{ persn.first_name }}",
            html="{% if %}",
            text="{{ person.frist_name }} {{ attributes.anything }} {{ organization['inn'] }}",
        )
    kinds = sorted((p.part, p.kind) for p in caught.value.problems)
    assert kinds == [("html", "syntax"), ("subject", "unknown_variable"), ("text", "unknown_field")]


def test_names_bound_by_the_template_are_not_variables() -> None:
    compiled = template(text="{% set n = person.first_name %}{% for c in n %}{{ c }}{% endfor %}")
    assert compiled.fields == frozenset({"person.first_name"})


def test_missing_fields_found_per_recipient_before_rendering() -> None:
    compiled = template(
        text=(
            "{{ person.salutation }} ({{ attributes.code }})"
            "{% if person.middle_name %} {{ person.middle_name }}{% endif %}"
            " {{ organization.inn | default('—') }}"
            " {{ person.last_name if person.last_name else '' }}"
            "{% if attributes.note is defined %}{{ attributes.note }}{% endif %}"
        )
    )
    recipients = [
        (
            "ivanov",
            {
                "person": person("Иван", "Петрович", "Иванов"),
                "organization": {},
                "attributes": {"code": "A1"},
            },
        ),
        (
            "petrov",
            {
                "person": person(None, None, "Петров"),
                "organization": {},
                "attributes": {"code": " "},
            },
        ),
        ("smith", {"person": person("John", None, "Smith"), "organization": {}, "attributes": {}}),
    ]
    assert find_missing(compiled, recipients) == [
        MissingField("petrov", "attributes.code"),
        MissingField("petrov", "person.salutation"),
        MissingField("smith", "attributes.code"),
    ]
    rendered = try_render(compiled, recipients[0][1])
    assert not isinstance(rendered, str)
    assert rendered.text == "Уважаемый Иван Петрович (A1) Петрович — Иванов"
    assert try_render(compiled, recipients[2][1]) == "missing field attributes.code"


def test_strict_rendering_never_prints_a_blank_for_an_absent_field() -> None:
    compiled = template(text="{{ attributes.code }}")
    with pytest.raises(UndefinedError):
        compiled.render({"attributes": {}})


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateInvalid):
        template(text="{{ person.__class__.__mro__ }}")
    compiled = template(text="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    result = try_render(compiled, {})
    assert isinstance(result, str)
    assert result.startswith("refused by the sandbox")


def test_no_python_globals_in_the_sandbox() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        template(text="{{ range(10) }}{{ cycler }}")
    assert {p.kind for p in caught.value.problems} == {"unknown_variable"}


def test_the_unsubscribe_link_is_a_variable_a_template_is_checked_for() -> None:
    with_link = template(html='<a href="{{ unsubscribe_url }}">Отписаться</a>', text=None)
    assert with_link.refers_to("unsubscribe_url")
    assert not template(text="Без ссылки").refers_to("unsubscribe_url")
    rendered = with_link.render({"unsubscribe_url": "https://x/u?t=a&b=c"})
    assert rendered.html == '<a href="https://x/u?t=a&amp;b=c">Отписаться</a>'


@pytest.mark.parametrize("bad", ["a\x00b", "x" * 200_001])
def test_nul_and_oversize_templates_are_problems(bad: str) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        template(text=bad)
    assert caught.value.problems[0].kind == "too_long"


def test_a_message_needs_a_body() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        template(html=None, text=None)
    assert caught.value.problems[0].kind == "missing_part"


def test_extra_person_fields() -> None:
    fields = PersonFields(
        first_name="Анна", middle_name=None, last_name="Ким", extra={"position": "Директор"}
    )
    assert fields["position"] == "Директор"
    assert "position" in set(fields)
