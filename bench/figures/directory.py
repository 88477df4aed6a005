"""The directory service (issue 3) over a million organizations: search (a name fragment plus a
filter), a dynamic list of the whole base evaluated, and single-record reads and writes.

The service runs as a process (`clientele serve directory`, consumers and relay off) on a
database of its own, migrated with the service's migrations and filled by COPY straight into its
tables: `organizations` organizations (Cyrillic names from a small generator, INNs and OGRNs with
valid checksums, directions, statuses, industries, phones, e-mails, custom attribute values),
`persons` people employed there, and the dynamic lists evaluated. The search documents are the
service's own stored generated columns, so COPY fills them as every other writer does. Seeding
takes minutes, so the database (`clientele_bench_directory_<organizations>`) is kept between
bench sessions and reused while its `bench_seed` row names this SEED_VERSION and these sizes
(`BENCH_DIRECTORY_RESEED=1` seeds it again; drop it by hand to reclaim the space).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from clientele_testkit.databases import drop_database
from stdnum.ru import inn as ru_inn
from stdnum.ru import ogrn as ru_ogrn

from bench.figures.http import serve_bare_app
from bench.figures.interactions import timed_gets
from bench.figures.services import issuer, migrate_service, start_service
from bench.registry import Context, Metric, Target, figure
from bench.stack import ensure_database
from bench.stats import percentile

SEED_VERSION = 1
"""Bump when the generated data changes: a kept database of another version is seeded anew."""

DIRECTIONS = {"msk": 30, "spb": 15, "ural": 10, "sib": 10, "volga": 10, "south": 10, "nw": 8}
SALES_DIRECTIONS = ["msk", "ural"]
STATUSES = {"prospect": 45, "client": 35, "partner": 10, "former": 10}
SEGMENTS = {"A": 10, "B": 30, "C": 60}
EMPLOYEES = 300
LIST_WHOLE = uuid.UUID("00000000-0000-4000-8000-00000000a11a")
LIST_CLIENTS = uuid.UUID("00000000-0000-4000-8000-00000000c11e")

# --- the generator ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """The words of a text (the vocabularies below are written as prose)."""
    return text.split()


_SYLLABLES = _words(
    "ла ре ко ми на то ва ри са де лю бо гу ма не ти ро ка зу по ле ви ту да фе ми ол ан"
    " ар ин ор ел ис ум ав эк ст тр пр кр вл бр гр др"
)
_ENDINGS = ["кс", "н", "р", "л", "с", "т", "ия", "он", "ис", "ум", "ет", "ар", ""]
_ROOTS = _words(
    "Строй Техно Агро Энерго Транс Пром Мед Газ Нефте Хим Лес Металл Инвест Торг Снаб"
    " Электро Авто Тепло Водо Фарм Телеком Софт Проект Дор Маш Сталь Бетон Кабель Уголь"
    " Рыб Мебель Текстиль Зерно Молоко Экспо Логистик Сибирь Урал Волга Север"
)
_SUFFIXES = _words(
    "монтаж сервис комплект ресурс инвест пром торг групп снаб маш строй проект систем"
    " технологии трейд холдинг альянс капитал союз лайн поставка развитие"
)
_REGIONS = _words("Москва Петербург Урал Сибирь Поволжье Юг Кубань Дон Кама Байкал Алтай Север")
_ADJECTIVES = _words(
    "Северная Южная Первая Новая Большая Русская Золотая Зелёная Белая Восточная Западная"
    " Центральная Столичная Единая"
)
_NOUNS = _words(
    "Звезда Компания Линия Гавань Долина Артель Мануфактура Фабрика Слобода Ярмарка"
    " Площадь Палитра Биржа Марка Опора"
)
_LATIN = _words("Vesta Nord Alfa Delta Terra Nova Prime Astra Vector Orion Sigma Lotus Atlas")
_LAST = _words(
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров"
    " Морозов Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов"
    " Андреев Макаров Никитин Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов"
    " Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв Гусев Киселёв Ильин"
    " Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков"
    " Баранов Филиппов Комаров"
)
_FIRST_MALE = _words(
    "Александр Алексей Андрей Борис Вадим Виктор Владимир Дмитрий Евгений Иван Игорь"
    " Кирилл Максим Михаил Николай Олег Павел Пётр Роман Сергей Юрий"
)
_FIRST_FEMALE = _words(
    "Анна Валентина Вера Галина Дарья Екатерина Елена Ирина Мария Наталья Ольга Светлана"
    " Татьяна Юлия Ксения Марина"
)
_PATRONYMICS = _words("Александров Алексеев Андреев Викторов Владимиров Дмитриев Иванов Сергеев")
_INDUSTRIES = [
    "Строительство",
    "Оптовая торговля",
    "Розничная торговля",
    "Производство",
    "Транспорт и логистика",
    "Информационные технологии",
    "Сельское хозяйство",
    "Энергетика",
    "Медицина",
    "Финансы",
    "Образование",
    "Гостиничный бизнес",
    "Нефть и газ",
    "Металлургия",
    "Химическая промышленность",
    "Телекоммуникации",
]
_CATEGORIES = ["ключевой", "малый бизнес", "госсектор", "дистрибьютор", "конечный потребитель"]
_TAGS = ["тендер", "выставка", "холодный", "рекомендация", "vip", "сайт", "повторный"]
_AREAS = ["495", "499", "812", "343", "383", "846", "861", "863", "843", "831", "351", "342"]
_INN_REGIONS = [77, 78, 50, 66, 54, 63, 23, 61, 16, 52, 74, 59, 47, 24, 2]
_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        _words("a b v g d e e zh z i y k l m n o p r s t u f h ts ch sh sch - y - e yu ya"),
        strict=True,
    )
)


def _weighted(rnd: random.Random, weights: dict[str, int]) -> str:
    return rnd.choices(list(weights), weights=list(weights.values()))[0]


def _latin(word: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in word.lower()).replace("-", "")


def _brand(rnd: random.Random) -> str:
    syllables = rnd.choice((2, 2, 3))
    word = "".join(rnd.choice(_SYLLABLES) for _ in range(syllables)) + rnd.choice(_ENDINGS)
    return word.capitalize()


def _company_name(rnd: random.Random) -> tuple[str, str]:
    """(the name in quotes, a Latin word for its site and e-mail domain)."""
    pattern = rnd.random()
    if pattern < 0.25:
        brand = _brand(rnd)
        return brand, _latin(brand)
    if pattern < 0.5:
        brand = _brand(rnd)
        return f"{brand}-{rnd.choice(_ROOTS)}{rnd.choice(_SUFFIXES)}", _latin(brand)
    if pattern < 0.75:
        root = rnd.choice(_ROOTS) + rnd.choice(_SUFFIXES)
        region = f" {rnd.choice(_REGIONS)}" if rnd.random() < 0.5 else ""
        return root + region, _latin(root)
    if pattern < 0.93:
        adjective, noun = rnd.choice(_ADJECTIVES), rnd.choice(_NOUNS)
        return f"{adjective} {noun}", _latin(noun) + _latin(adjective)[:3]
    latin = rnd.choice(_LATIN)
    return f"{latin} {rnd.choice(['Group', 'Trade', 'Systems', 'Logistics'])}", latin.lower()


def _person_name(rnd: random.Random) -> tuple[str, str, str]:
    last, patronymic = rnd.choice(_LAST), rnd.choice(_PATRONYMICS)
    if rnd.random() < 0.5:
        return last, rnd.choice(_FIRST_MALE), patronymic + "ич"
    return last + "а", rnd.choice(_FIRST_FEMALE), patronymic + "на"


def _serial(seq: int, digits: int) -> str:
    """A number of `digits` digits, different for every `seq` below 10**digits (48271 is prime
    to 10, so multiplying by it permutes the residues) and without runs of zeros."""
    return f"{(seq * 48271 + 1234567) % 10**digits:0{digits}d}"


def _company_inn(seq: int) -> str:
    region = _INN_REGIONS[seq % len(_INN_REGIONS)]
    body = f"{region:02d}{_serial(seq // len(_INN_REGIONS), 7)}"
    return body + str(ru_inn.calc_company_check_digit(body))


def _personal_inn(seq: int) -> str:
    region = _INN_REGIONS[seq % len(_INN_REGIONS)]
    body = f"{region:02d}{_serial(seq // len(_INN_REGIONS), 8)}"
    return body + str(ru_inn.calc_personal_check_digits(body))


def _ogrn(seq: int, inn: str) -> str:
    body = f"1{seq % 23 + 2:02d}{inn[:2]}{_serial(seq, 7)}"
    return body + ru_ogrn.calc_check_digit(body + "0")  # it reads the digits before the last


def _phone(rnd: random.Random, area: str | None = None) -> str:
    return f"+7{area or rnd.choice(_AREAS)}{rnd.randrange(10**7):07d}"


ORGANIZATION_COLUMNS = [
    "id",
    "legal_name",
    "short_name",
    "inn",
    "kpp",
    "ogrn",
    "legal_address",
    "phones",
    "emails",
    "email_domains",
    "sites",
    "industry",
    "categories",
    "tags",
    "responsible_employee_id",
    "status",
    "directions",
    "attributes",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
]


def organization_rows(
    count: int, employees: list[uuid.UUID], rnd: random.Random
) -> Iterator[tuple[Any, ...]]:
    """Rows of ORGANIZATION_COLUMNS, as the API would have stored them."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    for seq in range(count):
        form = rnd.choices(("ООО", "АО", "ПАО", "ЗАО", "ИП"), weights=(66, 12, 2, 5, 15))[0]
        if form == "ИП":
            last, first, middle = _person_name(rnd)
            name = short = f"{last} {first} {middle}"
            legal_name = f"ИП {name}"
            domain_word = _latin(last)
            inn: str | None = _personal_inn(seq)
            kpp = ogrn = None
        else:
            name, domain_word = _company_name(rnd)
            legal_name, short = f"{form} «{name}»", name
            inn = _company_inn(seq) if rnd.random() < 0.9 else None
            kpp = f"{inn[:4]}01001" if inn else None
            ogrn = _ogrn(seq, inn) if inn and rnd.random() < 0.8 else None
        first_direction = _weighted(rnd, DIRECTIONS)
        directions = [first_direction]
        if rnd.random() < 0.1:
            directions = sorted({first_direction, _weighted(rnd, DIRECTIONS)})
        city = rnd.choice(_REGIONS)
        area = rnd.choice(_AREAS)
        phones = [{"number": _phone(rnd, area), "kind": "work", "extension": None}]
        if rnd.random() < 0.3:
            phones.append({"number": _phone(rnd), "kind": "fax", "extension": None})
        if rnd.random() < 0.15:
            phones = []
        domain = f"{domain_word}{seq % 97 or ''}.ru"
        emails = [f"info@{domain}"] if rnd.random() < 0.6 else []
        if emails and rnd.random() < 0.3:
            emails.append(f"sales@{domain}")
        attributes: dict[str, Any] = {"segment": _weighted(rnd, SEGMENTS)}
        if rnd.random() < 0.7:
            attributes["employees"] = int(rnd.lognormvariate(3.5, 1.3)) + 1
        created = start + timedelta(seconds=rnd.randrange(5 * 365 * 86400))
        yield (
            uuid.uuid4(),
            legal_name,
            short,
            inn,
            kpp,
            ogrn,
            json.dumps(
                {
                    "text": f"г. {city}, ул. Ленина, д. {seq % 200 + 1}",
                    "country": "RU",
                    "postal_code": f"{100000 + seq % 800000}",
                    "region": None,
                    "city": city,
                },
                ensure_ascii=False,
            ),
            json.dumps(phones),
            emails,
            [domain] if emails else [],
            [f"https://{domain}"] if rnd.random() < 0.4 else [],
            rnd.choice(_INDUSTRIES),
            [rnd.choice(_CATEGORIES)] if rnd.random() < 0.4 else [],
            rnd.sample(_TAGS, rnd.choice((0, 0, 1, 2))),
            rnd.choice(employees),
            _weighted(rnd, STATUSES),
            directions,
            json.dumps(attributes),
            "bench-seed",
            created,
            "bench-seed",
            created,
        )


PERSON_COLUMNS = [
    "id",
    "last_name",
    "first_name",
    "middle_name",
    "phones",
    "emails",
    "email_domains",
    "created_by",
]


def person_rows(ids: list[uuid.UUID], rnd: random.Random) -> Iterator[tuple[Any, ...]]:
    for seq, person_id in enumerate(ids):
        last, first, middle = _person_name(rnd)
        mobile = [{"number": f"+79{rnd.randrange(10**9):09d}", "kind": "mobile", "extension": None}]
        email = f"{_latin(first)[:1]}.{_latin(last)}{seq}@mail.ru"
        yield (
            person_id,
            last,
            first,
            middle,
            json.dumps(mobile if rnd.random() < 0.7 else []),
            [email],
            ["mail.ru"],
            "bench-seed",
        )


# --- the kept database -----------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    url: str
    organizations: int
    persons: int
    seconds: float
    """How long seeding took (when it was seeded; a kept database reports its seeding)."""


async def _migrate(ctx: Context, url: str) -> None:
    # a new index over a kept million rows takes a while
    await migrate_service(ctx, "directory", url, seconds=1200)


_SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[])
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint c
      WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)
"""


async def _fill(conn: asyncpg.Connection, organizations: int, persons: int) -> None:
    """COPY the generated rows with the secondary indexes dropped, then build them again."""
    rnd = random.Random(SEED_VERSION)
    tables = ["organizations", "persons", "employments"]
    indexes = await conn.fetch(_SECONDARY_INDEXES, tables)
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    employees = [uuid.uuid4() for _ in range(EMPLOYEES)]
    await conn.copy_records_to_table(
        "employees",
        records=[
            (
                e,
                f"sales{n}@bench.test",
                f"Менеджер {n}",
                ["sales"],
                [_weighted(rnd, DIRECTIONS)],
                "bench",
            )
            for n, e in enumerate(employees)
        ],
        columns=["id", "email", "name", "roles", "directions", "created_by"],
    )
    await conn.execute(
        "INSERT INTO attribute_definitions (id, entity_kind, key, label, type, options,"
        " created_by) VALUES ($1, 'organization', 'segment', 'Сегмент', 'enum', $2, 'bench'),"
        " ($3, 'organization', 'employees', 'Число сотрудников', 'number', '[]', 'bench')",
        uuid.uuid4(),
        json.dumps(list(SEGMENTS)),
        uuid.uuid4(),
    )
    await conn.copy_records_to_table(
        "organizations",
        records=organization_rows(organizations, employees, rnd),
        columns=ORGANIZATION_COLUMNS,
    )
    if persons:
        person_ids = [uuid.uuid4() for _ in range(persons)]
        await conn.copy_records_to_table(
            "persons", records=person_rows(person_ids, rnd), columns=PERSON_COLUMNS
        )
        await conn.execute(
            "INSERT INTO employments (id, person_id, organization_id, position, created_by)"
            " SELECT gen_random_uuid(), p.id, o.id, 'Менеджер по закупкам', 'bench-seed'"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM persons) p"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM organizations) o"
            " ON o.n = (p.n * 7919) % $1 + 1",
            organizations,
        )
    await conn.execute(
        "INSERT INTO organization_lists (id, name, kind, filter, directions, created_by) VALUES"
        " ($1, 'Вся база', 'dynamic', '{}', $2, 'bench'),"
        " ($3, 'Клиенты и партнёры', 'dynamic', $4, $2, 'bench')",
        LIST_WHOLE,
        sorted(DIRECTIONS),
        LIST_CLIENTS,
        json.dumps({"status": ["client", "partner"]}),
    )
    for index in indexes:
        await conn.execute(index["indexdef"])


async def _vacuum(url: str) -> None:
    """VACUUM the directory's tables: a migration that rewrote one (a stored column added) leaves
    its visibility map empty, and the search's index-only scans then read every row they pass
    until a vacuum; with the map set, this takes a fraction of a second."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM organizations, persons, employments")
    finally:
        await conn.close()


async def seeded(ctx: Context) -> Seed:
    """The kept, seeded database of `organizations` organizations (see the module's doc)."""
    return await seeded_base(ctx, int(ctx.params["organizations"]), int(ctx.params["persons"]))


async def seeded_base(ctx: Context, organizations: int, persons: int) -> Seed:
    """The kept database of `organizations` organizations and `persons` persons, seeded by COPY
    when it is missing or of another seed version or size."""
    key = f"directory:seed:{organizations}:{persons}"
    if key in ctx.shared:
        seed: Seed = ctx.shared[key]
        return seed
    name = f"clientele_bench_directory_{organizations}" + ("" if persons else "_orgs")
    postgres = ctx.infra.postgres_url
    url = ctx.infra.database_url(name)
    if os.environ.get("BENCH_DIRECTORY_RESEED", "").strip() in {"1", "true", "yes"}:
        await drop_database(postgres, name)
    await ensure_database(postgres, name)
    conn = await asyncpg.connect(url)
    try:
        kept = None
        if await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL"):
            kept = await conn.fetchrow(
                "SELECT version, organizations, persons, seconds FROM bench_seed LIMIT 1"
            )
    finally:
        await conn.close()
    if kept is not None and tuple(kept)[:3] == (SEED_VERSION, organizations, persons):
        await _migrate(ctx, url)  # a migration added since the seeding applies to the kept rows
        await _vacuum(url)
        seed = Seed(url, organizations, persons, float(kept["seconds"]))
        ctx.notes.append(f"kept database {name} reused (seeded in {seed.seconds:.0f}s)")
    else:
        await drop_database(postgres, name)
        await ensure_database(postgres, name)
        await _migrate(ctx, url)
        started = time.perf_counter()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET maintenance_work_mem = '512MB'")
            await conn.execute("SET synchronous_commit = off")
            async with conn.transaction():
                await _fill(conn, organizations, persons)
            await conn.execute("VACUUM ANALYZE")
            seconds = time.perf_counter() - started
            await conn.execute(
                "CREATE TABLE bench_seed (version int NOT NULL, organizations int NOT NULL,"
                " persons int NOT NULL, seconds float8 NOT NULL,"
                " seeded_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(
                "INSERT INTO bench_seed VALUES ($1, $2, $3, $4)",
                SEED_VERSION,
                organizations,
                persons,
                seconds,
            )
        finally:
            await conn.close()
        seed = Seed(url, organizations, persons, seconds)
        ctx.notes.append(
            f"seeded {name}: {organizations:,} organizations, {persons:,} persons in {seconds:.0f}s"
        )
    ctx.shared[key] = seed
    return seed


# --- principals, the service, timing ---------------------------------------------------------


def _headers(ctx: Context, role: str) -> dict[str, str]:
    directions = SALES_DIRECTIONS if role == "sales" else []
    token = issuer(ctx).mint(f"bench-{role}", roles=[role], directions=directions, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


async def _directory(ctx: Context, seed: Seed) -> Any:
    return await start_service(ctx, "directory", seed.url, RUN_CONSUMERS="false", RUN_RELAY="false")


async def _timed(request: Awaitable[httpx.Response]) -> float:
    """Milliseconds a request (a coroutine not yet awaited) takes; it must answer 200."""
    started = time.perf_counter()
    response = await request
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"answered {response.status_code}: {response.text[:500]}")
    return elapsed


async def _bare_p95(ctx: Context, count: int) -> float:
    """The bare FastAPI app's GET /ping p95 from one sequential keep-alive client (as measured
    beside the interactions summary): what any HTTP round trip here costs."""
    bare = await serve_bare_app(ctx)
    async with httpx.AsyncClient(timeout=30) as client:
        await timed_gets(client, f"{bare.url}/ping", 30)
        return percentile(await timed_gets(client, f"{bare.url}/ping", count), 95)


# --- search ----------------------------------------------------------------------------------


async def _search_queries(url: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, search body): fragments common and rare, typo'd, an INN, a phone, a person's
    name, each with a filter. Rare ones come from the seeded rows."""
    conn = await asyncpg.connect(url)
    try:
        sample = await conn.fetchrow(
            "SELECT short_name, inn, status, phones FROM organizations"
            " WHERE short_name LIKE '%-%' AND inn IS NOT NULL AND jsonb_array_length(phones) > 0"
            " AND directions && $1::varchar[] ORDER BY id LIMIT 1",
            SALES_DIRECTIONS,
        )
        person = await conn.fetchrow(
            "SELECT p.last_name, p.first_name FROM persons p ORDER BY p.id LIMIT 1"
        )
    finally:
        await conn.close()
    assert sample is not None
    brand = sample["short_name"].split("-")[0].lower()
    typo = brand[:2] + ("и" if brand[2] != "и" else "е") + brand[3:]
    number = json.loads(sample["phones"])[0]["number"]
    spoken = f"8 ({number[2:5]}) {number[5:8]}-{number[8:10]}-{number[10:]}"
    status = sample["status"]
    queries: list[tuple[str, dict[str, Any]]] = [
        ("common fragment", {"q": "строй", "status": ["client"]}),
        ("common, 2 filters", {"q": "энергосерв", "status": ["client"], "directions": ["msk"]}),
        ("common typo", {"q": "строймантаж", "status": ["client", "partner"]}),
        ("rare fragment", {"q": brand, "status": [status]}),
        ("rare typo", {"q": typo, "status": [status]}),
        ("attribute", {"q": "техно", "attributes": {"segment": {"eq": "A"}}}),
        ("two words", {"q": "агро сибирь", "status": ["client", "prospect"]}),
        ("INN", {"q": sample["inn"], "status": [status]}),
        ("phone", {"q": spoken, "directions": SALES_DIRECTIONS}),
    ]
    if person is not None:
        queries.append(
            (
                "person",
                {"q": f"{person['last_name']} {person['first_name']}", "status": ["client"]},
            )
        )
    return [(label, {"filter": flt, "limit": 50}) for label, flt in queries]


async def _sequential(
    client: httpx.AsyncClient, url: str, queries: list[tuple[str, dict[str, Any]]], rounds: int
) -> dict[str, list[float]]:
    """Each query `rounds` times, round-robin; milliseconds by label."""
    latencies: dict[str, list[float]] = {label: [] for label, _ in queries}
    for _ in range(rounds):
        for label, body in queries:
            latencies[label].append(await _timed(client.post(url, json=body)))
    return latencies


def _flat(latencies: dict[str, list[float]]) -> list[float]:
    return [value for values in latencies.values() for value in values]


@figure(
    "directory-search",
    "Directory: search over 1,000,000 organizations",
    kind="figure",
    description=(
        "POST /v1/organizations/search (a name fragment plus a filter, 50 per page, sorted by"
        " name) over `organizations` seeded organizations (with `persons` people employed"
        " there), through the real service: as a sales user of two directions (about 40% of"
        " the base; the direction condition is part of every read) and as an administrator."
        " Ten queries: common fragments (`строй`, `энергосерв` with status and direction),"
        " a typo'd common word (`строймантаж`), a rare brand fragment and a typo of it, a"
        " fragment with a custom attribute (`segment` = A), two words, an INN, a phone as"
        " spoken (`8 (495) ...`) and a person's name. `rounds` sequential rounds of the ten"
        " from one keep-alive client after one untimed round; p50/p95/p99 over all of them."
        " Throughput: `concurrency` sales clients looping over the queries for `seconds` s."
        " `bare_p95_ms`: the bare FastAPI GET /ping from one sequential client in the same"
        " run. The per-query p95 are in the run notes."
    ),
    metrics=[
        Metric(
            "sales_p95_ms",
            "sales user p95",
            "ms",
            target=Target("<", 50),
            baseline="directory-search.bare_p95_ms",
            higher_is_better=False,
        ),
        Metric(
            "admin_p95_ms",
            "administrator p95",
            "ms",
            target=Target("<", 50),
            baseline="directory-search.bare_p95_ms",
            higher_is_better=False,
        ),
        Metric("sales_p50_ms", "sales user p50", "ms", higher_is_better=False),
        Metric("sales_p99_ms", "sales user p99", "ms", higher_is_better=False),
        Metric("admin_p50_ms", "administrator p50", "ms", higher_is_better=False),
        Metric("admin_p99_ms", "administrator p99", "ms", higher_is_better=False),
        Metric("worst_p95_ms", "slowest query's p95 (either user)", "ms", higher_is_better=False),
        Metric("req_per_s", "searches under concurrency (sales)", "req/s"),
        Metric(
            "bare_p95_ms", "bare FastAPI GET /ping p95, same client", "ms", higher_is_better=False
        ),
    ],
    params={
        "organizations": 1_000_000,
        "persons": 300_000,
        "rounds": 20,
        "concurrency": 8,
        "seconds": 5.0,
    },
    quick_params={"organizations": 100_000, "persons": 30_000, "rounds": 8, "seconds": 2.0},
    timeout=2400,
)
async def directory_search(ctx: Context) -> dict[str, float]:
    seed = await seeded(ctx)
    rounds, concurrency = int(ctx.params["rounds"]), int(ctx.params["concurrency"])
    seconds = float(ctx.params["seconds"])
    queries = await _search_queries(seed.url)
    service = await _directory(ctx, seed)
    url = f"{service.url}/v1/organizations/search"
    results: dict[str, dict[str, list[float]]] = {}
    for role in ("sales", "admin"):
        async with httpx.AsyncClient(headers=_headers(ctx, role), timeout=60) as client:
            await _sequential(client, url, queries, 1)
            results[role] = await _sequential(client, url, queries, rounds)
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    done: list[float] = []

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        turn = offset
        while loop.time() < stop:
            body = queries[turn % len(queries)][1]
            done.append(await _timed(client.post(url, json=body)))
            turn += 1

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(headers=_headers(ctx, "sales"), timeout=60)
            )
            for _ in range(concurrency)
        ]
        started = loop.time()
        await asyncio.gather(*(worker(c, n) for n, c in enumerate(clients)))
        elapsed = loop.time() - started
    per_query = {
        f"{role}/{label}": percentile(values, 95)
        for role, latencies in results.items()
        for label, values in latencies.items()
    }
    ctx.notes.append(
        "p95 per query (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in per_query.items())
    )
    sales, admin = _flat(results["sales"]), _flat(results["admin"])
    return {
        "sales_p95_ms": percentile(sales, 95),
        "admin_p95_ms": percentile(admin, 95),
        "sales_p50_ms": percentile(sales, 50),
        "sales_p99_ms": percentile(sales, 99),
        "admin_p50_ms": percentile(admin, 50),
        "admin_p99_ms": percentile(admin, 99),
        "worst_p95_ms": max(per_query.values()),
        "req_per_s": len(done) / elapsed,
        "bare_p95_ms": await _bare_p95(ctx, 200),
    }


# --- dynamic lists ---------------------------------------------------------------------------


async def _export(client: httpx.AsyncClient, url: str) -> tuple[float, float, int]:
    """Stream a CSV export: (ms to the first byte, seconds in all, data rows)."""
    started = time.perf_counter()
    first = 0.0
    lines = 0
    async with client.stream("GET", url, params={"format": "csv"}) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"export answered {response.status_code}: {response.text[:500]}")
        async for chunk in response.aiter_bytes():
            if not first:
                first = (time.perf_counter() - started) * 1000
            lines += chunk.count(b"\n")
    return first, time.perf_counter() - started, lines - 1


@figure(
    "directory-list",
    "Directory: dynamic list of 1,000,000 organizations evaluated",
    kind="figure",
    description=(
        "A dynamic list is a saved filter evaluated on every read. `Вся база` (filter {}:"
        " every one of the `organizations`) read by an administrator, and `Клиенты и"
        " партнёры` (status client or partner, about 45% of the base) read by a sales user of"
        " two directions (so about 18% of it). Evaluated = what GET /v1/lists/{id}/members"
        " answers: the first page of 50 by name with the cursor to the next (`requests`"
        " sequential requests after 2 untimed); then `pages` further pages of 500 followed by"
        " cursor (keyset, so page 100 costs what page 2 does); then the whole list streamed as"
        " CSV (GET /v1/lists/{id}/export?format=csv, every member with every column, by"
        " name) by the administrator: time to the first byte, the whole download and its rows"
        " per second. The API has no member count (a count over a million rows is what keyset"
        " pages avoid); `db_count_ms` is PostgreSQL alone counting the whole list's members"
        " (`count(*)` of live organizations), for scale."
    ),
    metrics=[
        Metric(
            "first_page_p95_ms",
            "whole base, administrator: first page p95",
            "ms",
            target=Target("<", 2000),
            higher_is_better=False,
        ),
        Metric(
            "sales_first_page_p95_ms",
            "clients and partners, sales user: first page p95",
            "ms",
            target=Target("<", 2000),
            higher_is_better=False,
        ),
        Metric("next_page_p95_ms", "next pages of 500 by cursor p95", "ms", higher_is_better=False),
        Metric("export_first_byte_ms", "CSV export: first byte", "ms", higher_is_better=False),
        Metric("export_s", "CSV export of the whole base", "s", higher_is_better=False),
        Metric("export_rows_per_s", "CSV export rate", "rows/s"),
        Metric(
            "db_count_ms", "PostgreSQL alone: count(*) of the members", "ms", higher_is_better=False
        ),
    ],
    params={"organizations": 1_000_000, "persons": 300_000, "requests": 20, "pages": 20},
    quick_params={"organizations": 100_000, "persons": 30_000, "requests": 10, "pages": 5},
    timeout=2400,
)
async def directory_list(ctx: Context) -> dict[str, float]:
    seed = await seeded(ctx)
    requests, pages = int(ctx.params["requests"]), int(ctx.params["pages"])
    service = await _directory(ctx, seed)
    whole = f"{service.url}/v1/lists/{LIST_WHOLE}"
    clients = f"{service.url}/v1/lists/{LIST_CLIENTS}"
    firsts: dict[str, list[float]] = {}
    for role, url in (("admin", whole), ("sales", clients)):
        async with httpx.AsyncClient(headers=_headers(ctx, role), timeout=120) as client:
            for _ in range(2):
                await _timed(client.get(f"{url}/members", params={"limit": 50}))
            firsts[role] = [
                await _timed(client.get(f"{url}/members", params={"limit": 50}))
                for _ in range(requests)
            ]
    async with httpx.AsyncClient(headers=_headers(ctx, "admin"), timeout=600) as client:
        cursor: str | None = None
        walked: list[float] = []
        for _ in range(pages + 1):
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            started = time.perf_counter()
            response = await client.get(f"{whole}/members", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if cursor:
                walked.append(elapsed)
            cursor = response.json()["next_cursor"]
        first_byte, export_s, rows = await _export(client, f"{whole}/export")
    if rows != seed.organizations:
        ctx.notes.append(f"the export had {rows:,} rows, the base {seed.organizations:,}")
    conn = await asyncpg.connect(seed.url)
    try:
        started = time.perf_counter()
        await conn.fetchval("SELECT count(*) FROM organizations WHERE deleted_at IS NULL")
        counted = (time.perf_counter() - started) * 1000
    finally:
        await conn.close()
    return {
        "first_page_p95_ms": percentile(firsts["admin"], 95),
        "sales_first_page_p95_ms": percentile(firsts["sales"], 95),
        "next_page_p95_ms": percentile(walked, 95),
        "export_first_byte_ms": first_byte,
        "export_s": export_s,
        "export_rows_per_s": rows / export_s,
        "db_count_ms": counted,
    }


# --- single records --------------------------------------------------------------------------


@dataclass
class _Window:
    """The measured part of a load: requests sent from `measuring` until `stop` count."""

    measuring: float
    stop: float


Work = Callable[[int, httpx.AsyncClient, _Window], Awaitable[None]]


async def _load(ctx: Context, workers: int, work: Work) -> float:
    """`workers` clients (one keep-alive connection each) run `work` for the warm-up and the
    measured seconds; the measured seconds they took."""
    loop = asyncio.get_running_loop()
    measuring = loop.time() + float(ctx.params["warmup_s"])
    window = _Window(measuring, measuring + float(ctx.params["seconds"]))
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(headers=_headers(ctx, "sales"), timeout=60)
            )
            for _ in range(workers)
        ]
        await asyncio.gather(*(work(n, c, window) for n, c in enumerate(clients)))
    return loop.time() - measuring


async def _visible_ids(url: str, count: int, skip: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM organizations WHERE deleted_at IS NULL"
            " AND directions && $1::varchar[] ORDER BY id OFFSET $2 LIMIT $3",
            SALES_DIRECTIONS,
            skip,
            count,
        )
    finally:
        await conn.close()
    return [row["id"] for row in rows]


def _patch_body(turn: int) -> dict[str, Any]:
    return {
        "industry": _INDUSTRIES[turn % len(_INDUSTRIES)],
        "attributes": {"employees": turn % 5000 + 1},
    }


@figure(
    "directory-records",
    "Directory: single-record reads and writes under concurrency",
    kind="figure",
    description=(
        "On the seeded base, as a sales user of two directions. Reads: GET"
        " /v1/organizations/{id} (the record with its register flag, direction-checked) by"
        " `readers` clients, each with one keep-alive connection, on random ids among 20,000"
        " it may see, for `seconds` s after `warmup_s` s. Writes: PATCH with If-Match (industry"
        " and a custom attribute; each write validates, locks the row, writes it, its audit"
        " row and its outbox event in one transaction; relay off) by `writers` clients, each on"
        " a record of its own, so none is refused. Contended: `writers` clients share"
        " `contended_records` records, each reading the ETag then patching; what a stale"
        " If-Match costs and how often it happens (412 share of the PATCHes). Baseline:"
        " `http-bare` (GET /ping at 32 clients) in the same bench run."
    ),
    metrics=[
        Metric("get_req_per_s", "GET by id", "req/s", baseline="http-bare.req_per_s"),
        Metric("get_p50_ms", "GET p50", "ms", higher_is_better=False),
        Metric("get_p99_ms", "GET p99", "ms", higher_is_better=False),
        Metric("patch_req_per_s", "PATCH, own records", "req/s", baseline="http-bare.req_per_s"),
        Metric("patch_p50_ms", "PATCH p50", "ms", higher_is_better=False),
        Metric("patch_p99_ms", "PATCH p99", "ms", higher_is_better=False),
        Metric("contended_ok_per_s", "contended: PATCHes accepted", "req/s"),
        Metric(
            "contended_412_pct", "contended: PATCHes refused (412)", "%", higher_is_better=False
        ),
        Metric("contended_p99_ms", "contended: PATCH p99", "ms", higher_is_better=False),
    ],
    params={
        "organizations": 1_000_000,
        "persons": 300_000,
        "readers": 32,
        "writers": 16,
        "contended_records": 2,
        "seconds": 5.0,
        "warmup_s": 1.0,
    },
    quick_params={
        "organizations": 100_000,
        "persons": 30_000,
        "seconds": 2.0,
        "warmup_s": 0.5,
    },
    timeout=2400,
)
async def directory_records(ctx: Context) -> dict[str, float]:
    seed = await seeded(ctx)
    readers, writers = int(ctx.params["readers"]), int(ctx.params["writers"])
    contended = int(ctx.params["contended_records"])
    ids = await _visible_ids(seed.url, 20_000, 0)
    own = await _visible_ids(seed.url, writers + contended, 20_000 + ctx.run * 100)
    service = await _directory(ctx, seed)
    base = f"{service.url}/v1/organizations"
    loop = asyncio.get_running_loop()
    reads: list[float] = []
    writes: list[float] = []
    shared: list[float] = []
    outcomes = {200: 0, 412: 0}

    async def read(n: int, client: httpx.AsyncClient, window: _Window) -> None:
        rnd = random.Random(n)
        while (sent := loop.time()) < window.stop:
            response = await client.get(f"{base}/{rnd.choice(ids)}")
            if response.status_code != 200:
                raise RuntimeError(f"GET answered {response.status_code}: {response.text}")
            if sent >= window.measuring:
                reads.append((loop.time() - sent) * 1000)

    async def write(n: int, client: httpx.AsyncClient, window: _Window) -> None:
        url = f"{base}/{own[n]}"
        tag = (await client.get(url)).headers["etag"]
        turn = n
        while (sent := loop.time()) < window.stop:
            response = await client.patch(url, json=_patch_body(turn), headers={"If-Match": tag})
            if response.status_code != 200:
                raise RuntimeError(f"PATCH answered {response.status_code}: {response.text}")
            tag = response.headers["etag"]
            turn += writers
            if sent >= window.measuring:
                writes.append((loop.time() - sent) * 1000)

    async def contend(n: int, client: httpx.AsyncClient, window: _Window) -> None:
        url = f"{base}/{own[writers + n % contended]}"
        turn = n
        while loop.time() < window.stop:
            tag = (await client.get(url)).headers["etag"]
            sent = loop.time()
            response = await client.patch(url, json=_patch_body(turn), headers={"If-Match": tag})
            if response.status_code not in outcomes:
                raise RuntimeError(f"PATCH answered {response.status_code}: {response.text}")
            turn += writers
            if sent >= window.measuring:
                outcomes[response.status_code] += 1
                shared.append((loop.time() - sent) * 1000)

    try:
        read_s = await _load(ctx, readers, read)
        write_s = await _load(ctx, writers, write)
        contended_s = await _load(ctx, writers, contend)
    finally:
        conn = await asyncpg.connect(seed.url)
        try:  # the relay is off: the kept database should not keep the run's events
            await conn.execute("DELETE FROM outbox")
        finally:
            await conn.close()
    return {
        "get_req_per_s": len(reads) / read_s,
        "get_p50_ms": percentile(reads, 50),
        "get_p99_ms": percentile(reads, 99),
        "patch_req_per_s": len(writes) / write_s,
        "patch_p50_ms": percentile(writes, 50),
        "patch_p99_ms": percentile(writes, 99),
        "contended_ok_per_s": outcomes[200] / contended_s,
        "contended_412_pct": 100 * outcomes[412] / max(1, sum(outcomes.values())),
        "contended_p99_ms": percentile(shared, 99),
    }
