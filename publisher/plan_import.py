"""A bulk posting plan from CSV: parsed and checked row by row before anything is saved.

The file (UTF-8, with or without a BOM; comma or semicolon separated) has a header row:

    article,unit,channels,time,lead_in
    42,01,facebook zalo,14/11/2026 09:00,Hà Nội thông tin:

- `article`: the id of a stored article;
- `unit`: a unit code;
- `channels`: platform keys separated by spaces, `;` or `|` — or `all`;
- `time`: dd/mm/yyyy HH:MM, 24-hour, Asia/Ho_Chi_Minh (an explicit ISO time with an offset
  is accepted too);
- `lead_in` (optional): the unit's opening line.

Pure: the caller passes what is known (units, articles, now); nothing here reads a database.
Every problem names its row number (the line in the file, header = 1), the column and why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from publisher.domain import VIETNAM_TZ, Platform
from publisher.text import nfc

REQUIRED_COLUMNS = ("article", "unit", "channels", "time")
OPTIONAL_COLUMNS = ("lead_in",)
LOCAL_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
MAX_LEAD_IN = 500


@dataclass(frozen=True, slots=True)
class PlanRow:
    line: int
    article_id: int
    unit_code: str
    platforms: tuple[Platform, ...]  # empty: every channel the unit has
    at: datetime  # aware, UTC
    lead_in: str = ""


@dataclass(frozen=True, slots=True)
class PlanError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"dòng {self.line}" + (f", cột {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PlanResult:
    rows: tuple[PlanRow, ...]
    errors: tuple[PlanError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class TimeFormatError(ValueError):
    pass


def parse_local_time(text: str) -> datetime:
    """dd/mm/yyyy HH:MM (Vietnam time) or ISO 8601 with an offset → an aware UTC datetime."""
    value = text.strip()
    for pattern in LOCAL_FORMATS:
        try:
            naive = datetime.strptime(value, pattern)  # noqa: DTZ007 - zone attached next line
        except ValueError:
            continue
        return naive.replace(tzinfo=VIETNAM_TZ).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeFormatError(
            f"thời gian {value!r} không đúng dạng dd/mm/yyyy HH:MM (ví dụ 14/11/2026 09:00)"
        ) from None
    if parsed.tzinfo is None:
        raise TimeFormatError(f"thời gian {value!r} thiếu múi giờ (ví dụ +07:00)")
    return parsed.astimezone(UTC)


def _platforms(text: str) -> tuple[tuple[Platform, ...], list[str]]:
    words = [w for w in text.replace(";", " ").replace("|", " ").replace(",", " ").split() if w]
    if len(words) == 1 and words[0].lower() in ("all", "tatca", "tất cả"):
        return (), []
    unknown, found = [], []
    for word in words:
        try:
            platform = Platform(word.lower())
        except ValueError:
            unknown.append(word)
            continue
        if platform not in found:
            found.append(platform)
    if not words:
        unknown.append("")
    return tuple(found), unknown


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    first = sample.splitlines()[0] if sample else ""
    return csv.excel if first.count(",") >= first.count(";") else _Semicolon()


class _Semicolon(csv.excel):
    delimiter = ";"


def parse_plan(
    text: str,
    known_units: Collection[str],
    known_articles: Collection[int],
    now: datetime,
) -> PlanResult:
    """Check every row; `rows` holds only the good ones, `errors` every problem found."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return PlanResult(
            (), (PlanError(1, "", "tệp trống: cần dòng tiêu đề và ít nhất một dòng"),)
        )
    reader = csv.reader(io.StringIO(text), _dialect(text))
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown_columns = [h for h in header if h and h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    errors: list[PlanError] = [PlanError(1, c, "thiếu cột bắt buộc") for c in missing]
    errors += [PlanError(1, c, "cột không được hỗ trợ") for c in unknown_columns]
    if missing:
        return PlanResult((), tuple(errors))
    index = {name: header.index(name) for name in header if name}
    rows: list[PlanRow] = []
    data_rows = 0
    for line, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue  # blank lines are allowed
        data_rows += 1
        row_errors: list[PlanError] = []

        def cell(name: str, record: list[str] = record) -> str:
            at = index.get(name)
            return nfc(record[at].strip()) if at is not None and at < len(record) else ""

        if len(record) > len(header):
            row_errors.append(PlanError(line, "", f"{len(record)} ô, tiêu đề chỉ có {len(header)}"))
        article_text = cell("article")
        article_id = 0
        if not article_text.isdigit():
            row_errors.append(PlanError(line, "article", f"{article_text!r} không phải mã bài số"))
        else:
            article_id = int(article_text)
            if article_id not in known_articles:
                row_errors.append(PlanError(line, "article", f"không có bài mã {article_id}"))
        unit = cell("unit")
        if not unit:
            row_errors.append(PlanError(line, "unit", "để trống"))
        elif unit not in known_units:
            row_errors.append(PlanError(line, "unit", f"không có đơn vị mã {unit!r}"))
        platforms, unknown = _platforms(cell("channels"))
        for word in unknown:
            reason = "để trống" if not word else f"kênh {word!r} không có"
            known = ", ".join(p.value for p in Platform)
            row_errors.append(PlanError(line, "channels", f"{reason} (dùng: {known} hoặc all)"))
        at: datetime | None = None
        try:
            at = parse_local_time(cell("time"))
        except TimeFormatError as error:
            row_errors.append(PlanError(line, "time", str(error)))
        if at is not None and at <= now:
            shown = at.astimezone(VIETNAM_TZ).strftime("%d/%m/%Y %H:%M")
            row_errors.append(PlanError(line, "time", f"{shown} đã qua"))
        lead_in = cell("lead_in")
        if len(lead_in) > MAX_LEAD_IN:
            row_errors.append(PlanError(line, "lead_in", f"dài quá {MAX_LEAD_IN} ký tự"))
        if row_errors or at is None:
            errors += row_errors
            continue
        rows.append(PlanRow(line, article_id, unit, platforms, at, lead_in))
    if data_rows == 0:
        errors.append(PlanError(1, "", "không có dòng dữ liệu nào"))
    return PlanResult(tuple(rows), tuple(errors))
