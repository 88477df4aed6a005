"""Paper post (issue 15, ADR 46): personalised letters rendered to one print-ready PDF, in a
worker process as the campaigns service renders them, against plain PDF pages as a baseline."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

from clientele_campaigns.mailings.postal import Letter, PostalAddress, PrintJob, Sender, print_job

from bench.registry import Context, Metric, figure

ADDRESS = PostalAddress(
    lines=("г. Екатеринбург", "ул. Малышева", "д. 36", "оф. 12"), postcode="620014"
)
BODY = "Уважаемый Иван Петрович!\n\n" + "Приглашаем вас на семинар о новых условиях поставки. " * 30


def _letters(count: int) -> list[Letter]:
    return [
        Letter(
            addressee=(f"ООО «Участник {n}»", "Иванову Ивану Петровичу"),
            address=ADDRESS,
            subject="Приглашение на семинар «Налоги-2027»",
            body=BODY,
            recipient=f"ООО «Участник {n}», Иванов Иван Петрович",
        )
        for n in range(count)
    ]


def _plain_pages(count: int) -> int:
    """The baseline: as many A4 pages with a line of Cyrillic text each, PT Sans embedded."""
    from clientele_campaigns.mailings.printing import FONT, register_fonts
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    register_fonts()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, initialFontName=FONT)
    for n in range(count):
        canvas.setFont(FONT, 11)
        canvas.drawString(72, 720, f"Страница {n}: Уважаемый Иван Петрович!")
        canvas.showPage()
    canvas.save()
    return len(out.getvalue())


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


@figure(
    "pdf-plain",
    "Baseline: plain A4 PDF pages (reportlab canvas, PT Sans embedded)",
    kind="baseline",
    description="`letters` pages of one line of Cyrillic text each, drawn with reportlab's"
    " canvas in a spawned worker process (the fonts registered before the clock starts).",
    metrics=[Metric("pages_per_s", "pages written per second", "pages/s")],
    params={"letters": 10_000},
    quick_params={"letters": 1_000},
    timeout=600,
)
async def pdf_plain(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["letters"])
    loop = asyncio.get_running_loop()
    with _pool() as pool:
        await loop.run_in_executor(pool, _plain_pages, 1)  # warm: imports and fonts
        started = time.perf_counter()
        await loop.run_in_executor(pool, _plain_pages, count)
        elapsed = time.perf_counter() - started
    return {"pages_per_s": count / elapsed}


@figure(
    "mailings-print",
    "Mailings: 10,000 personalised letters rendered to one print-ready PDF",
    kind="figure",
    description="`letters` letters (an addressee block in the dative, a postal address, a"
    " subject and a 1.6 KB Cyrillic text flowing as paragraphs) and their C5 envelopes"
    " rendered by `print_job` in a spawned worker process, as the mailing worker does (the"
    " fonts registered before the clock starts). Baseline: `pdf-plain`.",
    metrics=[
        Metric("seconds", "letters and envelopes rendered", "s", higher_is_better=False),
        Metric(
            "letters_per_s", "letters per second", "letters/s", baseline="pdf-plain.pages_per_s"
        ),
        Metric("letters_mb", "the letters' PDF", "MB", higher_is_better=False),
    ],
    params={"letters": 10_000},
    quick_params={"letters": 1_000},
    timeout=900,
)
async def mailings_print(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["letters"])
    sender = Sender("ООО «Клиентела»", ADDRESS)
    loop = asyncio.get_running_loop()
    with _pool() as pool:
        warm = PrintJob(_letters(1), None, sender, "c5", 3000)
        await loop.run_in_executor(pool, print_job, warm)
        job = PrintJob(_letters(count), None, sender, "c5", 3000)
        started = time.perf_counter()
        result = await loop.run_in_executor(pool, print_job, job)
        elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "letters_per_s": count / elapsed,
        "letters_mb": len(result.letters_pdf) / 1e6,
    }
