"""The directory service (issues 3 and 17): importing 100,000 organizations from an .xlsx file,
end to end over HTTP, into a base of 100,000 and of 1,000,000 organizations, in the three modes,
against a plain PostgreSQL COPY of the same rows.

The workbook is made once per bench: Cyrillic names (a legal form and a made-up brand, some
sole traders), INNs with valid checksums, KPP, phones, e-mails, addresses, a status and an
industry. The bases are the kept databases of the directory figures (`bench.figures.directory`,
seeded by COPY, organizations only: `clientele_bench_directory_<n>_orgs`) in seven directions
the importer does not see; before each run the importer's own direction gets `existing`
organizations, so that some rows are updated (matched by INN, e-mail or phone), some names are
near an existing one, and some rows repeat an earlier row of the file; after the run they and
what the import wrote are deleted again. The service runs as a process (`clientele serve
directory`, relay and consumers off).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from clientele_directory.imports.headers import map_headers
from clientele_directory.imports.rules import parse_row
from clientele_directory.organizations.rules import storage_values
from openpyxl import Workbook
from stdnum.ru import inn as ru_inn

from bench.figures.directory import seeded_base
from bench.figures.services import issuer, start_service
from bench.processes import Proc
from bench.registry import Context, Metric, Target, figure

DIRECTION = "bench-import"
"""The importer's only direction: none of the base's organizations is in it."""
BASES = (100_000, 1_000_000)
"""The organizations already in the directory, in other directions (the smaller one shows how
the cost per row grows with the base)."""
MODES = ("dry_run", "all_or_nothing", "valid_rows")

HEADER = [
    "Наименование",
    "Краткое наименование",
    "ИНН",
    "КПП",
    "Телефон",
    "E-mail",
    "Юридический адрес",
    "Статус",
    "Вид деятельности",
]
FORMS = ("ООО", "ООО", "ООО", "АО", "ПАО", "ЗАО", "НКО", "ГУП")
SYLLABLES = [
    "ал",
    "ар",
    "ба",
    "ве",
    "ви",
    "га",
    "ге",
    "да",
    "ди",
    "ель",
    "за",
    "зо",
    "ил",
    "ка",
    "ки",
    "ко",
    "ла",
    "ли",
    "ло",
    "ма",
    "ме",
    "ми",
    "мо",
    "на",
    "не",
    "ни",
    "но",
    "ор",
    "па",
    "пе",
    "по",
    "ра",
    "ре",
    "ри",
    "ро",
    "са",
    "се",
    "си",
    "со",
    "та",
    "те",
    "ти",
    "то",
    "ур",
    "фа",
    "фе",
    "фи",
    "ха",
    "це",
    "ча",
    "ше",
    "эн",
    "юр",
    "я",
]
TAILS = (
    "-Урал", "-Сибирь", " Групп", " Трейд", " Сервис", " Плюс", "-Юг", " Строй", " Холдинг",
    " Логистик", "-Центр", " Инвест", "-Север", " Техно", " Агро", " Медиа",
)  # fmt: skip
"""Common words after a brand, in one name of five (each in about 1% of names)."""
INDUSTRIES = (
    "Оптовая торговля",
    "Строительство",
    "Производство пищевых продуктов",
    "Транспорт и логистика",
    "Разработка программного обеспечения",
    "Металлургия",
    "Сельское хозяйство",
    "Розничная торговля",
    "Консалтинг",
    "Медицина",
)
CITIES = ("Москва", "Санкт-Петербург", "Екатеринбург", "Казань", "Новосибирск", "Самара")
STREETS = ("ул. Ленина", "пр. Мира", "ул. Садовая", "ул. Победы", "наб. Реки Мойки")
SURNAMES = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалёв",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
    "Филиппов",
    "Комаров",
    "Давыдов",
    "Беляев",
    "Герасимов",
    "Богданов",
    "Осипов",
    "Сидоров",
    "Матвеев",
    "Титов",
]
FIRST_NAMES = [
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Максим",
    "Иван",
    "Михаил",
    "Артём",
    "Никита",
    "Евгений",
    "Владимир",
    "Павел",
    "Роман",
    "Олег",
    "Виктор",
    "Игорь",
    "Юрий",
    "Константин",
    "Денис",
    "Николай",
    "Григорий",
]
PATRONYMICS = [
    "Петрович",
    "Иванович",
    "Сергеевич",
    "Андреевич",
    "Викторович",
    "Олегович",
    "Юрьевич",
    "Александрович",
    "Дмитриевич",
    "Михайлович",
    "Николаевич",
    "Владимирович",
    "Павлович",
    "Романович",
    "Евгеньевич",
]
MOBILE_CODES = ("903", "905", "915", "916", "925", "926", "977", "985", "999", "912")
STATUSES = ("клиент", "потенциальный", "партнёр", "client", "prospect")


@dataclass(frozen=True)
class Organization:
    legal_name: str
    short_name: str
    inn: str | None
    kpp: str | None
    phone: str
    email: str
    address: str
    status: str
    industry: str

    def row(self) -> list[str | None]:
        return [
            self.legal_name,
            self.short_name,
            self.inn,
            self.kpp,
            self.phone,
            self.email,
            self.address,
            self.status,
            self.industry,
        ]


def company_inn(seq: int) -> str:
    body = f"{77 + seq // 10_000_000:02d}{seq % 10_000_000:07d}"
    return body + str(ru_inn.calc_company_check_digit(body))


def trader_inn(seq: int) -> str:
    body = f"{50 + seq // 100_000_000:02d}{seq % 100_000_000:08d}"
    return body + "".join(ru_inn.calc_personal_check_digits(body))


_LATIN = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "sch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def latin(word: str) -> str:
    """A Cyrillic word transliterated for a domain name."""
    return "".join(_LATIN.get(c, c if c.isascii() and c.isalnum() else "") for c in word.lower())


def brand(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4)))
    return word.capitalize() + (rng.choice(TAILS) if rng.random() < 0.2 else "")


def organization(rng: random.Random, seq: int) -> Organization:
    """A synthetic organization numbered `seq` (its INN, phone and e-mail follow from it)."""
    digits, code = f"{seq:07d}", MOBILE_CODES[seq % len(MOBILE_CODES)]
    inn: str | None
    if seq % 10 == 9:  # a sole trader
        name = f"{rng.choice(SURNAMES)} {rng.choice(FIRST_NAMES)} {rng.choice(PATRONYMICS)}"
        legal, short, inn, kpp = f"ИП {name}", f"ИП {name.split()[0]}", trader_inn(seq), None
    else:
        title = brand(rng)
        form = rng.choice(FORMS)
        legal, short, inn = f"{form} «{title}»", title, company_inn(seq)
        kpp = f"{inn[:4]}01001"
    if seq % 50 == 7:  # a prospect whose INN is not known yet
        inn, kpp = None, None
    return Organization(
        legal_name=legal,
        short_name=short,
        inn=inn,
        kpp=kpp,
        phone=f"+7 ({code}) {digits[:3]}-{digits[3:5]}-{digits[5:]}",
        email=f"info{seq}@{latin(short.split()[0])}.ru",
        address=f"г. {rng.choice(CITIES)}, {rng.choice(STREETS)}, д. {seq % 200 + 1}",
        status=rng.choice(STATUSES),
        industry=rng.choice(INDUSTRIES),
    )


@dataclass(frozen=True)
class Dataset:
    """The existing base (seeded before each run) and the file's rows, with what to expect."""

    existing: list[Organization]
    rows: int
    seed: int
    by_inn: int
    by_email: int
    by_phone: int
    similar: int
    in_file: int

    def file_rows(self) -> Iterator[list[str | None]]:
        """The data rows of the file: new organizations, with the planned duplicates spread
        through the file (every kind in every part of it)."""
        rng = random.Random(self.seed)
        special = self.by_inn + self.by_email + self.by_phone + self.similar + self.in_file
        spacing = max(1, self.rows // max(1, special))
        kinds = (
            ["inn"] * self.by_inn
            + ["email"] * self.by_email
            + ["phone"] * self.by_phone
            + ["similar"] * self.similar
            + ["in_file"] * self.in_file
        )
        rng.shuffle(kinds)
        base = len(self.existing)
        earlier: list[list[str | None]] = []
        for index in range(self.rows):
            fresh = organization(rng, base + index).row()
            kind = kinds.pop() if index % spacing == spacing - 1 and kinds else None
            if kind is not None and kind != "in_file":
                old = self.existing[rng.randrange(base)]
                if kind == "inn":
                    fresh = [old.legal_name + " (новое)", *old.row()[1:4], *fresh[4:]]
                elif kind == "email":
                    fresh = [*fresh[:2], None, None, None, old.email, *fresh[6:]]
                elif kind == "phone":
                    fresh = [*fresh[:2], None, None, old.phone, None, *fresh[6:]]
                else:  # a near spelling of an existing name, otherwise new
                    fresh = [old.legal_name.replace("«", '"').replace("»", '"'), *fresh[1:]]
            elif kind == "in_file" and earlier:
                fresh = earlier[rng.randrange(len(earlier))]
            if index % 97 == 0:
                earlier.append(fresh)
            yield fresh


def dataset(rows: int, existing: int, seed: int = 20_240_301) -> Dataset:
    rng = random.Random(seed + 1)
    return Dataset(
        existing=[organization(rng, seq) for seq in range(existing)],
        rows=rows,
        seed=seed,
        by_inn=200,
        by_email=100,
        by_phone=100,
        similar=200,
        in_file=100,
    )


def write_workbook(data: Dataset, path: Path) -> int:
    """The file as an .xlsx (openpyxl write-only); its size in bytes."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Организации")
    sheet.append(HEADER)
    for row in data.file_rows():
        sheet.append(row)
    workbook.save(path)
    return path.stat().st_size


def organization_records(rows: Iterable[list[str | None]], direction: str) -> list[tuple[Any, ...]]:
    """Rows of the file's shape as rows of `organizations` (validated by the import's own rules;
    invalid rows are left out), in SEED_COLUMNS order."""
    mapping, _ = map_headers(HEADER, {})
    records = []
    for number, row in enumerate(rows, start=2):
        draft = parse_row(number, mapping, row, [direction]).draft
        if draft is None:
            continue
        values = storage_values(draft)
        records.append(
            (
                uuid.uuid4(),
                *(values[c] for c in SEED_COLUMNS[1:5]),
                json.dumps(values["legal_address"]),
                json.dumps(values["phones"]),
                values["emails"],
                values["email_domains"],
                values["industry"],
                values["status"],
                values["directions"],
                "bench",
            )
        )
    return records


SEED_COLUMNS = [
    "id",
    "legal_name",
    "short_name",
    "inn",
    "kpp",
    "legal_address",
    "phones",
    "emails",
    "email_domains",
    "industry",
    "status",
    "directions",
    "created_by",
]


# --- the figure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    data: Dataset
    workbook: Path
    size: int
    seed: list[tuple[Any, ...]]
    """The importer's own organizations as `organizations` rows."""
    cells: list[tuple[str | None, ...]]
    """The file's data rows as the text of their cells (for the plain COPY)."""
    records: list[tuple[Any, ...]]
    """The file's valid rows as `organizations` rows (for the COPY into its shape)."""


async def prepared(ctx: Context) -> Prepared:
    """The workbook and the importer's own organizations, made once per bench."""
    rows, existing = int(ctx.params["rows"]), int(ctx.params["existing"])
    key = f"directory-import:{rows}:{existing}"
    if key in ctx.shared:
        ready: Prepared = ctx.shared[key]
        return ready
    holder = tempfile.TemporaryDirectory(prefix="clientele-bench-import-")
    ctx.cleanup.callback(holder.cleanup)
    data = dataset(rows, existing)
    workbook = Path(holder.name) / "organizations.xlsx"
    size = await asyncio.to_thread(write_workbook, data, workbook)
    ready = Prepared(
        data=data,
        workbook=workbook,
        size=size,
        seed=await asyncio.to_thread(
            organization_records, (org.row() for org in data.existing), DIRECTION
        ),
        cells=[tuple(row) for row in data.file_rows()],
        records=await asyncio.to_thread(organization_records, data.file_rows(), DIRECTION),
    )
    ctx.shared[key] = ready
    return ready


async def _clear(url: str) -> None:
    """The kept base as seeded: the importer's direction emptied, the import's audit entries and
    events deleted."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DELETE FROM organizations WHERE directions && $1::varchar[]", [DIRECTION]
        )
        await conn.execute("TRUNCATE audit_log, outbox, unwanted_register")
    finally:
        await conn.close()


async def _reset(url: str, ready: Prepared) -> None:
    """The base as before an import: the kept base and the importer's own organizations."""
    await _clear(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table("organizations", records=ready.seed, columns=SEED_COLUMNS)
        await conn.execute("VACUUM ANALYZE organizations")
    finally:
        await conn.close()


def _tree(pid: int) -> list[int]:
    """A process and its descendants (the service, an import job's child process, its readers
    and their helpers); a process that ended meanwhile has none."""
    children: list[str] = []
    try:
        # every thread's children: the job's child is started from a worker thread (ADR 62)
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += (task / "children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [pid, *(p for child in children for p in _tree(int(child)))]


def _status_kb(pid: int, path: str, key: str) -> int:
    """A ``key:`` line's kB of /proc/<pid>/<path> (0 once the process ended)."""
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0  # it ended between the listing and the read
    line = next((line for line in text.splitlines() if line.startswith(key + ":")), None)
    return int(line.split()[1]) if line else 0


def _memory_mb(proc: Proc) -> tuple[float, float]:
    """The service process and its descendants in MB: their peak resident sets (VmHWM) summed
    (pages they share counted in each), and their proportional sets now (PSS, from
    smaps_rollup: each shared page split among the processes sharing it) summed."""
    tree = _tree(proc.process.pid)
    hwm = sum(_status_kb(pid, "status", "VmHWM") for pid in tree)
    pss = sum(_status_kb(pid, "smaps_rollup", "Pss") for pid in tree)
    return hwm / 1024, pss / 1024


def _peak_mb(proc: Proc) -> float:
    """The peak resident sets (VmHWM) of the service process and its descendants, summed, in MB
    (pages they share are counted in each)."""
    return _memory_mb(proc)[0]


FINISHED = {"succeeded", "rejected", "failed", "cancelled"}


def _spawned(pid: int) -> bool:
    """Whether the process is one multiprocessing spawned (a job's child, a reader), not its
    resource tracker, which lives as long as the service."""
    try:
        return "multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


async def _children_gone(proc: Proc, limit: float) -> float:
    """Seconds until the service's spawned processes have exited: a job's child ends after its
    job, once it vacuumed the tables of a rolled-back import (ADR 73), as it would in a service
    that keeps running; stopping the service sooner would cancel that."""
    started = time.perf_counter()
    for _ in range(int(limit * 10)):
        if not any(_spawned(pid) for pid in _tree(proc.process.pid)):
            break
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def _import(
    ctx: Context, url: str, ready: Prepared, mode: str, src: str | None = None
) -> tuple[float, float, float, dict[str, Any]]:
    """One import job run by a fresh service process (of ``src``'s code when given): (seconds
    from the upload to the job's end, the peak of its processes' VmHWM summed and of their PSS
    summed, in MB, the job's counts)."""
    env = {"RUN_CONSUMERS": "false", "RUN_RELAY": "false"}
    if src:
        env["PYTHONPATH"] = src
    service = await start_service(ctx, "directory", url, **env)
    headers = {
        "Authorization": "Bearer "
        + issuer(ctx).mint(
            "bench-importer", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
        )
    }
    content = ready.workbook.read_bytes()
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
        started = time.perf_counter()
        queued = await client.post(
            "/v1/organizations/import",
            files={"file": ("organizations.xlsx", content, "application/octet-stream")},
            data={"mode": mode},
            headers=headers,
        )
        if queued.status_code != 202:
            raise RuntimeError(f"{mode} answered {queued.status_code}: {queued.text[:500]}")
        peak = peak_pss = 0.0
        while True:
            # sampled while the job runs: its child process and readers end with it (ADR 62)
            hwm, pss = _memory_mb(service)
            peak, peak_pss = max(peak, hwm), max(peak_pss, pss)
            job = (await client.get(queued.headers["Location"], headers=headers)).json()
            if job["state"] in FINISHED:
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    expected = "rejected" if mode == "all_or_nothing" else "succeeded"
    if job["state"] != expected:
        raise RuntimeError(f"{mode} ended {job['state']}: {json.dumps(job)[:500]}")
    hwm, pss = _memory_mb(service)
    limit = 120.0
    tidy = await _children_gone(service, limit)
    where = f"{mode}, {ready.data.rows:,} rows over {url.rsplit('/', 1)[-1]}"
    if tidy >= limit:
        ctx.notes.append(f"{where}: the job's process still ran {limit:.0f} s after the job ended")
    elif tidy >= 0.5:
        ctx.notes.append(f"{where}: the job's process exited {tidy:.1f} s after the job ended")
    await service.stop()
    counts = {k: job["counts"][k] for k in ("rows", "created", "updated", "skipped")}
    return seconds, max(peak, hwm), max(peak_pss, pss), counts


async def _copy(
    url: str, table: str, ddl: str, records: list[tuple[Any, ...]], columns: list[str]
) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(ddl)
        started = time.perf_counter()
        await conn.copy_records_to_table(table, records=records, columns=columns)
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    return seconds


def _import_metrics(base: int) -> list[Metric]:
    """The figures of the imports into a base of ``base`` organizations."""
    tag, size = ("" if base == BASES[-1] else "small_"), f"base {base:,}"
    labels = {
        "dry_run": "dry run",
        "all_or_nothing": "all-or-nothing (rejected: in-file duplicates)",
        "valid_rows": "import (valid rows), committed",
    }
    metrics = []
    for mode in MODES:
        metrics += [
            Metric(
                f"{tag}{mode}_s",
                f"{labels[mode]}, end to end, {size}",
                "s",
                target=Target("<", 60),
                baseline="directory-import.copy_s",
                higher_is_better=False,
            ),
            Metric(
                f"{tag}{mode}_peak_mb",
                f"peak VmHWM summed (service, job process, readers), {labels[mode]}, {size}",
                "MB",
                target=Target("<", 500),
                higher_is_better=False,
            ),
            Metric(
                f"{tag}{mode}_peak_pss_mb",
                f"peak PSS summed (shared pages counted once), {labels[mode]}, {size}",
                "MB",
                higher_is_better=False,
            ),
        ]
    return metrics


@figure(
    "directory-import",
    "Directory: import of 100,000 organizations from .xlsx into bases of 100,000 and 1,000,000",
    kind="figure",
    description=(
        "POST /v1/organizations/import of an .xlsx of `rows` organizations (Cyrillic names,"
        " checksummed INNs, KPP, phones, e-mails, addresses; 200 rows match an existing"
        " organization by INN, 100 by e-mail, 100 by phone, 200 have a near name, 100 repeat"
        " an earlier row) as a sales user of one direction holding `existing` organizations,"
        " into a directory of 100,000 and of 1,000,000 more organizations in seven other"
        " directions (seeded by COPY, kept between benches), each by a fresh `clientele serve"
        " directory` process (relay and consumers off), in the three modes: the dry run (the"
        " whole per-row report stored), all-or-nothing (rejected: the in-file duplicates are"
        " bad rows) and the import of the valid rows (committed), each a job, from the first"
        " byte of the upload to the job's end (polled every 0.2 s); the service is stopped once"
        " the job's child process has exited (after a rolled-back import it vacuums the tables"
        " the import inserted into, ADR 73; the seconds it took after the job's end are noted)."
        " Peak memory: the VmHWM of"
        " the service process and its descendants (the job's child process, its readers), summed,"
        " the highest of the samples taken at every poll (the target's measure: pages the"
        " processes share are counted in each); beside it the highest sum of their PSS (from"
        " smaps_rollup, each shared page split among the processes sharing it). `growth` is the"
        " committed import's time into the larger base over the smaller's (1.0: the cost per"
        " row does not grow with the base)."
        " Baselines, in the same run: `copy_s`, asyncpg COPY of the same rows as the text of"
        " their cells into an unindexed table of as many text columns; `copy_table_s`, COPY of"
        " the same rows, validated, into a table made LIKE `organizations` INCLUDING ALL (its"
        " indexes and generated columns, not its triggers)."
    ),
    metrics=[
        *_import_metrics(BASES[-1]),
        *_import_metrics(BASES[0]),
        Metric(
            "growth",
            f"import time, base {BASES[-1]:,} / base {BASES[0]:,}",
            "×",
            target=Target("<", 1.25),
            higher_is_better=False,
        ),
        Metric("copy_s", "plain COPY of the same rows", "s", higher_is_better=False),
        Metric(
            "copy_table_s",
            "COPY into organizations' shape (indexes, generated columns)",
            "s",
            higher_is_better=False,
        ),
    ],
    params={"rows": 100_000, "existing": 10_000},
    quick_params={"rows": 10_000, "existing": 2_000},
    timeout=3600,
)
async def directory_import(ctx: Context) -> dict[str, float]:
    ready = await prepared(ctx)
    result: dict[str, float] = {}
    for base in BASES:
        seed = await seeded_base(ctx, base, 0)
        tag = "" if base == BASES[-1] else "small_"
        await _reset(seed.url, ready)
        ctx.cleanup.push_async_callback(_clear, seed.url)
        counts: dict[str, dict[str, Any]] = {}
        for mode in MODES:
            seconds, peak, peak_pss, counts[mode] = await _import(ctx, seed.url, ready, mode)
            result[f"{tag}{mode}_s"], result[f"{tag}{mode}_peak_mb"] = seconds, peak
            result[f"{tag}{mode}_peak_pss_mb"] = peak_pss
        if counts["dry_run"]["rows"] != ready.data.rows:
            ctx.notes.append(
                f"base {base:,}: the dry run reported {counts['dry_run']['rows']} rows"
                f" of {ready.data.rows}"
            )
        if counts["valid_rows"] != counts["dry_run"]:
            ctx.notes.append(
                f"base {base:,}: the import did {counts['valid_rows']},"
                f" its dry run said {counts['dry_run']}"
            )
        await _clear(seed.url)
    result["growth"] = result["valid_rows_s"] / result["small_valid_rows_s"]
    url = (await seeded_base(ctx, BASES[0], 0)).url
    result["copy_s"] = await _copy(
        url,
        "bench_import_cells",
        "CREATE TABLE bench_import_cells ("
        + ", ".join(f"c{i} text" for i in range(len(HEADER)))
        + ")",
        ready.cells,
        [f"c{i}" for i in range(len(HEADER))],
    )
    result["copy_table_s"] = await _copy(
        url,
        "bench_import_shaped",
        "CREATE TABLE bench_import_shaped (LIKE organizations INCLUDING ALL)",
        ready.records,
        SEED_COLUMNS,
    )
    return result
