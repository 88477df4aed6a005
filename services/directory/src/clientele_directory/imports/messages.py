"""An import's messages in the caller's language (ADR 48): the report's row problems and the
job's problem are stored in English and translated when read, by ``Accept-Language``; their
codes (``kind``, the problem ``type``) stay English. The Russian texts are data: a pattern over
the English message and its Russian form. A message no pattern knows keeps its English text,
after the Russian words for its kind. No I/O."""

from __future__ import annotations

import re
from collections.abc import Callable

from clientele_directory.imports.rules import RowProblem, RowReport

RU = "ru"
EN = "en"
_LANGUAGES = (RU, EN)

_KEY_RU = {"inn": "ИНН", "email": "e-mail", "phone": "телефон", "id": "id"}
_KIND_RU = {
    "inn": "неверный ИНН",
    "kpp": "неверный КПП",
    "ogrn": "неверный ОГРН",
    "phone": "неверный телефон",
    "email": "неверный e-mail",
    "site": "неверный сайт",
    "country": "неверная страна",
}
"""What a problem of a kind is, for the messages no pattern knows (the English follows)."""


def _key(match: re.Match[str], group: str = "key") -> str:
    return _KEY_RU.get(match.group(group), match.group(group))


_Template = str | Callable[[re.Match[str]], str]

RUSSIAN: list[tuple[str, _Template]] = [
    # identifiers (organizations.rules.valid_inn and the field validators)
    (
        r"INN has (?P<n>\d+) digits: a leading zero lost by Excel\? \(format the column as text\)",
        "В ИНН {n} цифр: Excel потерял ведущий ноль? (задайте столбцу текстовый формат)",
    ),
    (
        r"INN (?P<v>.+) is a number in scientific notation: the cell was turned into a number "
        r"by Excel \(format the column as text\)",
        "ИНН {v} записан числом в экспоненциальной форме: Excel превратил ячейку в число "
        "(задайте столбцу текстовый формат)",
    ),
    (
        r"INN holds a date \((?P<v>.+)\): the cell was turned into a date by Excel \(format the "
        r"column as text\)",
        "В ячейке ИНН дата ({v}): Excel превратил ячейку в дату (задайте столбцу текстовый формат)",
    ),
    (
        r"INN has (?P<n>\d+) characters: 10 or 12 digits expected",
        "В ИНН {n} символов, а нужно 10 или 12 цифр",
    ),
    (r"INN has a wrong checksum", "Неверная контрольная цифра ИНН"),
    (r"OGRN has a wrong length or checksum", "Неверная длина или контрольная цифра ОГРН"),
    (
        r"a (?P<inn>\d+)-digit INN goes with a (?P<ogrn>\d+)-digit OGRN",
        "К {inn}-значному ИНН нужен {ogrn}-значный ОГРН",
    ),
    (r"KPP must be 9 characters: NNNNPPNNN", "КПП — 9 символов: NNNNPPNNN"),
    (
        r"KPP has 8 digits: a leading zero lost by Excel\? \(format the column as text\)",
        "В КПП 8 цифр: Excel потерял ведущий ноль? (задайте столбцу текстовый формат)",
    ),
    (r"KPP needs the 10-digit INN of a legal entity", "КПП бывает только с 10-значным ИНН юрлица"),
    # contacts (values.py)
    (r"not a valid phone number", "Недействительный номер телефона"),
    (r"not a phone number: .*", "Это не номер телефона"),
    (r"a phone number has at most 64 characters", "Номер телефона длиннее 64 символов"),
    (r"not a web address \(http or https\)", "Это не адрес сайта (http или https)"),
    (r"not an ISO 3166-1 alpha-2 country code", "Это не код страны ISO 3166-1 (две буквы)"),
    (r"text must be one line", "Текст должен быть в одну строку"),
    (r"An email address must have an @-sign\.", "В адресе e-mail нет знака @"),
    (
        r"(?P<v>(?:An|The) email address .+|The domain name .+|The part (?:before|after) the "
        r"@-sign .+)",
        "Неверный адрес e-mail ({v})",
    ),
    # pydantic's own
    (r"Field required", "Обязательное поле"),
    (
        r"String should have at most (?P<n>\d+) characters?",
        "Не длиннее {n} символов",
    ),
    (r"String should have at least (?P<n>\d+) characters?", "Не короче {n} символов"),
    (r"Input should be (?P<v>.+)", "Допустимые значения: {v}"),
    # the import's own (imports.rules and imports.service)
    (
        r"the same (?P<key>\w+) as row (?P<n>\d+)",
        lambda m: f"Тот же {_key(m)}, что в строке {m.group('n')}",
    ),
    (
        r"the (?P<key>\w+) matches (?P<n>\d+) organizations; merge them first",
        lambda m: f"{_key(m)}: совпадает с {m.group('n')} организациями; сначала объедините их",
    ),
    (r"not an organization id", "Это не id организации"),
    (r"no organization with this id that you may see", "Нет доступной вам организации с этим id"),
    (r"no such active employee", "Нет такого работающего сотрудника"),
    (
        r"no active employee named «(?P<v>.*)» that you may see",
        "Нет доступного вам работающего сотрудника «{v}»",
    ),
    (
        r"(?P<n>\d+) employees are named «(?P<v>.*)»: give the e-mail or the id",
        "Сотрудников с именем «{v}»: {n}; укажите e-mail или id",
    ),
    (r"you may only import into your directions", "Импортировать можно только в свои направления"),
    (
        r"you may only move records into your directions",
        "Переносить записи можно только в свои направления",
    ),
    (
        r"organizations with a similar name exist; review before merging",
        "Есть организации с похожим названием; проверьте перед объединением",
    ),
    (
        r"matches the unwanted counterparty register",
        "Совпадает с реестром нежелательных контрагентов",
    ),
    # the import of persons' (person_imports.rules, persons.rules; ADR 63)
    (
        r"the (?P<key>\w+) matches (?P<n>\d+) persons; merge them first",
        lambda m: f"{_key(m)}: совпадает с {m.group('n')} людьми; сначала объедините их",
    ),
    (
        r"no organization (?:INN (?P<inn>\S+)|named «(?P<v>.*)») that you may see: imported "
        r"without the link",
        lambda m: (
            "Нет доступной вам организации "
            + (f"с ИНН {m['inn']}" if m["inn"] else f"«{m['v']}»")
            + ": человек импортирован без связи с ней"
        ),
    ),
    (
        r"(?P<n>\d+) organizations (?:INN (?P<inn>\S+)|named «(?P<v>.*)»): imported without "
        r"the link",
        lambda m: (
            "Организаций "
            + (f"с ИНН {m['inn']}" if m["inn"] else f"«{m['v']}»")
            + f": {m['n']}; человек импортирован без связи с ними"
        ),
    ),
    (r"not a date: «(?P<v>.*)» \(DD\.MM\.YYYY expected\)", "Это не дата: «{v}» (нужно ДД.ММ.ГГГГ)"),
    (r"the cell holds a NUL character", "В ячейке символ NUL"),
    (r"not a yes or no: «(?P<v>.*)»", "Ни «да», ни «нет»: «{v}»"),
    (r"a person needs a first or last name", "Нужны имя или фамилия"),
    (
        r"a birthday lies between 1900-01-01 and today",
        "Дата рождения — между 01.01.1900 и сегодняшним днём",
    ),
    (r"no such organization", "Нет такой организации"),
    (r"no such person", "Нет такого человека"),
    # the file's (the job's problem)
    (r"The file cannot be read: (?P<v>.+)", lambda m: f"Файл не прочитан: {russian(m['v'])}"),
    (
        r"line (?P<n>\d+) is not UTF-8 text \(byte (?P<b>0x[0-9A-F]{2}) at character (?P<c>\d+)\)"
        r"(?: \((?P<all>\d+) lines in all\))?, while the rest of the file is UTF-8: correct the "
        r"line or save the file as UTF-8 again; nothing was imported\.?",
        lambda m: (
            f"строка {m['n']} не в кодировке UTF-8 (байт {m['b']}, символ {m['c']})"
            + (f" (всего таких строк: {m['all']})" if m["all"] else "")
            + ", а весь остальной файл в UTF-8: исправьте строку или сохраните файл в UTF-8"
            " заново; ничего не импортировано."
        ),
    ),
    (
        r"line (?P<n>\d+) is neither UTF-8 nor (?P<e>.+) text \(byte (?P<b>0x[0-9A-F]{2}) at "
        r"character (?P<c>\d+)\), while the rest of the file is (?P=e): correct the line or save "
        r"the file as UTF-8\.?",
        "строка {n} не в кодировке ни UTF-8, ни {e} (байт {b}, символ {c}), а весь остальной "
        "файл в {e}: исправьте строку или сохраните файл в UTF-8.",
    ),
    (
        r"no column names the organization \(name it «Наименование»/«legal_name» or «ИНН»\)\.?",
        "нет столбца с организацией (назовите его «Наименование» или «ИНН»).",
    ),
    (
        r"line (?P<n>\d+) is not UTF-16 text \(a broken character at character (?P<c>\d+)\), "
        r"while the rest of the file is (?P<e>.+): correct the line or save the file again; "
        r"nothing was imported\.?",
        "строка {n} не в кодировке UTF-16 (испорченный символ, символ {c}), а весь остальной "
        "файл в {e}: исправьте строку или сохраните файл заново; ничего не импортировано.",
    ),
    (
        r"line (?P<n>\d+) ends in half a character: the (?P<e>.+) file is cut short; save it "
        r"again; nothing was imported\.?",
        "строка {n} обрывается на половине символа: файл в {e} обрезан; сохраните его заново; "
        "ничего не импортировано.",
    ),
    (
        r"the file is a list of persons \(contacts\), as amoCRM and Bitrix24 export them: its "
        r"columns (?P<v>.+) name people, and the import of organizations takes organizations "
        r"only, so nothing was imported; to import the file as persons send it to "
        r"POST /v1/persons/import; to import companies export them \(amoCRM: Компании → "
        r"Экспорт\) and import that file, or map those columns to null to read each row as "
        r"its company\.?",
        "в файле люди (контакты), как их выгружают amoCRM и Битрикс24: столбцы {v} — это "
        "люди, а импорт организаций принимает только организации, поэтому ничего не "
        "импортировано; чтобы импортировать файл как людей, отправьте его в "
        "POST /v1/persons/import; чтобы импортировать компании, выгрузите их (в amoCRM: "
        "Компании → Экспорт) и импортируйте этот файл или сопоставьте эти столбцы с null, "
        "чтобы читать каждую строку как её компанию.",
    ),
    (
        r"no column names the person \(name it «Фамилия», «Имя», «ФИО» or «Полное имя»\)\.?",
        "нет столбца с человеком (назовите его «Фамилия», «Имя», «ФИО» или «Полное имя»).",
    ),
    (r"the file is empty\.?", "файл пуст."),
    (
        r"more than (?P<n>[\d,]+) rows(?: \(the file has (?P<m>[\d,]+) rows\))?\.?",
        lambda m: f"больше {m['n']} строк" + (f" (в файле {m['m']})" if m["m"] else "") + ".",
    ),
]
"""English messages (whole) and their Russian: a format string over the pattern's groups, or a
function of the match."""

_COMPILED = [(re.compile(pattern, re.DOTALL), template) for pattern, template in RUSSIAN]


def russian(message: str) -> str | None:
    """The Russian of an English message (None when no pattern knows it)."""
    for pattern, template in _COMPILED:
        if (match := pattern.fullmatch(message)) is not None:
            if callable(template):
                return template(match)
            return template.format(**match.groupdict())
    return None


def language(accept_language: str | None) -> str:
    """The language of the caller's ``Accept-Language`` the import speaks (ru or en; en when
    neither is asked)."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        weight = 1.0
        if (q := re.search(r"q=([^;]*)", params)) is not None:
            try:
                weight = float(q.group(1))
            except ValueError:
                weight = 0.0
        if primary in _LANGUAGES and weight > 0:
            ranked.append((-weight, order, primary))
    return min(ranked)[2] if ranked else EN


def problem_in(problem: RowProblem, lang: str) -> RowProblem:
    """A row problem in the language (its kind and field unchanged)."""
    if lang != RU:
        return problem
    text = russian(problem.message)
    if text is None:
        what = _KIND_RU.get(problem.kind)
        text = f"{what}: {problem.message}" if what else problem.message
    return problem.model_copy(update={"message": text})


def line_in(line: RowReport, lang: str) -> RowReport:
    """A report line with its problems in the language."""
    if lang != RU:
        return line
    return line.model_copy(
        update={
            "errors": [problem_in(p, lang) for p in line.errors],
            "warnings": [problem_in(p, lang) for p in line.warnings],
        }
    )


def detail_in(detail: str, lang: str) -> str:
    """A problem's detail in the language (as it is when no pattern knows it)."""
    if lang != RU:
        return detail
    return russian(detail) or detail
