"""Rendering coverage reports: rich tables, CSV, XLSX (openpyxl), JSON and PNG charts.

Everything here takes the values `publisher.reports` computes and returns text, writes a
file, or builds a rich renderable; nothing queries the database. Times are shown in
Asia/Ho_Chi_Minh; machine formats (CSV, JSON, XLSX) also carry minutes as plain numbers.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from publisher.domain import VIETNAM_TZ
from publisher.report_directives import DirectivesOverview, Progress
from publisher.reports import (
    NO_CHANNEL,
    Coverage,
    CoverageCell,
    RecallReport,
    ReceiptsReport,
    Rollup,
    UnitRecord,
    coverage_curve,
    level_label,
)

FORMATS = ("table", "csv", "xlsx", "png", "json")
FILE_FORMATS = {"csv": "csv", "xlsx": "xlsx", "png": "png", "json": "json"}

_STATE_STYLE = {
    "sent": "green",
    "partial": "yellow",
    "failed": "bold red",
    "expired": "red",
    "needs_review": "bold magenta",
    "unknown": "magenta",
    "cancelled": "dim",
    NO_CHANNEL: "dim",
}


def local_time(moment: datetime | None) -> str:
    return moment.astimezone(VIETNAM_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def duration(seconds: float | None) -> str:
    """Short human duration: "45s", "12m", "3h05m", "2d04h"."""
    if seconds is None:
        return ""
    whole = round(seconds)
    sign = "-" if whole < 0 else ""
    whole = abs(whole)
    if whole < 60:
        return f"{sign}{whole}s"
    if whole < 600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s" if whole % 60 else f"{sign}{whole // 60}m"
    if whole < 3600:
        return f"{sign}{whole // 60}m"
    if whole < 86_400:
        return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{sign}{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def _cell_text(cell: CoverageCell) -> Text:
    """ "✓ 5m" when sent (lag), "partial 40m (1/2)", or "failed · 1h00m" (waiting so far)."""
    style = _STATE_STYLE.get(cell.state, "")
    if cell.lag_s is None:
        return Text(f"{cell.state} · {duration(cell.waiting_s)}", style=style)
    label = "✓" if cell.state == "sent" else cell.state
    extra = f" ({cell.sent}/{cell.accounts})" if cell.accounts > 1 else ""
    return Text(f"{label} {duration(cell.lag_s)}{extra}", style=style)


# --- rich table -----------------------------------------------------------------------------


def _rollup_table(title: str, rows: Sequence[Rollup], total: Rollup | None) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("", "units", "reached", "complete", "deliveries", "sent", "% sent"):
        table.add_column(name, justify="left" if not name else "right")
    table.add_column("median lag", justify="right")
    table.add_column("max lag", justify="right")
    for rollup in [*rows, *([total] if total else [])]:
        table.add_row(
            rollup.label,
            str(rollup.units_targeted),
            f"{rollup.units_reached} ({rollup.percent_units_reached:.1f}%)",
            str(rollup.units_complete),
            str(rollup.targeted),
            str(rollup.sent),
            f"{rollup.percent_sent:.1f}",
            duration(rollup.median_lag_s),
            duration(rollup.max_lag_s),
            style="bold" if rollup is total else "",
        )
    return table


def coverage_renderable(coverage: Coverage) -> Group:
    article = coverage.article
    header = Text.assemble(
        ("Mức độ phủ sóng · coverage: ", "bold"),
        (f"#{article.id} {article.title}", "bold cyan"),
        f"\nđăng lúc · published {local_time(article.published_at)} (+07), "
        f"báo cáo lúc · as of {local_time(coverage.now)}",
    )
    levels = _rollup_table("Theo cấp · by level", coverage.levels, coverage.total)
    platforms = _rollup_table("Theo kênh · by channel", coverage.by_platform, None)
    matrix = Table(title="Đơn vị × kênh · units × channels", title_justify="left")
    matrix.add_column("unit")
    matrix.add_column("level")
    for platform in coverage.platforms:
        matrix.add_column(platform)
    for unit in coverage.units:
        by_platform = {c.platform: c for c in unit.cells}
        cells: list[Text | str] = []
        for platform in coverage.platforms:
            cell = by_platform.get(platform)
            cells.append(_cell_text(cell) if cell else "")
        name = f"{unit.unit.code} {unit.unit.name}"
        if not unit.cells:
            name += " (no channel account)"
        matrix.add_row(name, level_label(unit.unit.kind), *cells)
    return Group(header, levels, platforms, matrix)


def unit_record_renderable(record: UnitRecord) -> Group:
    header = Text.assemble(
        ("Hồ sơ đăng tin · publishing record: ", "bold"),
        (f"{record.unit.code} {record.unit.name}", "bold cyan"),
        f"\n{local_time(record.since)} → {local_time(record.until)} (+07): "
        f"{len(record.rows)} articles, {record.sent}/{record.targeted} deliveries sent "
        f"({record.percent_sent:.1f}%), median lag {duration(record.median_lag_s) or '—'}",
    )
    table = Table()
    for name in ("published", "article", "kind"):
        table.add_column(name)
    for platform in record.platforms:
        table.add_column(platform)
    for row in record.rows:
        by_platform = {c.platform: c for c in row.cells}
        cells: list[Text | str] = []
        for platform in record.platforms:
            cell = by_platform.get(platform)
            cells.append(_cell_text(cell) if cell else "")
        title = textwrap.shorten(row.article.title, 60, placeholder="…")
        table.add_row(local_time(row.article.published_at), title, row.article.kind, *cells)
    return Group(header, table)


# --- CSV and JSON ---------------------------------------------------------------------------

CELL_COLUMNS = (
    "article_id",
    "unit",
    "unit_name",
    "level",
    "platform",
    "state",
    "accounts",
    "sent",
    "first_sent_at",
    "lag_min",
    "waiting_min",
)


def _cell_rows(coverage: Coverage) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for unit in coverage.units:
        base = [coverage.article.id, unit.unit.code, unit.unit.name, unit.unit.kind]
        if not unit.cells:
            rows.append([*base, "", NO_CHANNEL, 0, 0, "", None, None])
        for cell in unit.cells:
            rows.append(
                [
                    *base,
                    cell.platform,
                    cell.state,
                    cell.accounts,
                    cell.sent,
                    cell.first_sent_at.astimezone(VIETNAM_TZ).isoformat()
                    if cell.first_sent_at
                    else "",
                    minutes(cell.lag_s),
                    minutes(cell.waiting_s),
                ]
            )
    return rows


LEVEL_COLUMNS = (
    "level",
    "label",
    "units_targeted",
    "units_reached",
    "units_complete",
    "percent_units_reached",
    "deliveries_targeted",
    "deliveries_sent",
    "percent_sent",
    "median_lag_min",
    "max_lag_min",
)


def _level_rows(coverage: Coverage) -> list[list[Any]]:
    return [
        [
            r.key,
            r.label,
            r.units_targeted,
            r.units_reached,
            r.units_complete,
            r.percent_units_reached,
            r.targeted,
            r.sent,
            r.percent_sent,
            minutes(r.median_lag_s),
            minutes(r.max_lag_s),
        ]
        for r in (*coverage.levels, coverage.total)
    ]


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def coverage_csv(coverage: Coverage) -> str:
    """One row per unit × channel cell (units without an account: one `no_channel` row)."""
    return _csv(CELL_COLUMNS, _cell_rows(coverage))


RECORD_COLUMNS = (
    "unit",
    "article_id",
    "title",
    "kind",
    "published_at",
    "platform",
    "state",
    "accounts",
    "sent",
    "lag_min",
    "waiting_min",
)


def _record_rows(record: UnitRecord) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for row in record.rows:
        base = [
            record.unit.code,
            row.article.id,
            row.article.title,
            row.article.kind,
            row.article.published_at.astimezone(VIETNAM_TZ).isoformat(),
        ]
        if not row.cells:
            rows.append([*base, "", NO_CHANNEL, 0, 0, None, None])
        for cell in row.cells:
            rows.append(
                [
                    *base,
                    cell.platform,
                    cell.state,
                    cell.accounts,
                    cell.sent,
                    minutes(cell.lag_s),
                    minutes(cell.waiting_s),
                ]
            )
    return rows


def unit_record_csv(record: UnitRecord) -> str:
    return _csv(RECORD_COLUMNS, _record_rows(record))


def to_json_text(
    value: Coverage | UnitRecord | RecallReport | DirectivesOverview | ReceiptsReport,
) -> str:
    """Readable at the top (a key a line, a list an item a line), compact inside each item:
    the C encoder does the work (json's indent= runs in pure Python: a directive over 3,400
    units — 2.8 MB — took ~400 ms that way, ~40 ms this way). The same JSON value."""
    data = value.to_json()

    def dump(item: object) -> str:
        return json.dumps(item, ensure_ascii=False)

    lines = []
    for key, item in data.items():
        if isinstance(item, list) and item:
            text = "[\n" + ",\n".join(f"    {dump(x)}" for x in item) + "\n  ]"
        else:
            text = dump(item)
        lines.append(f"  {dump(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# --- XLSX -----------------------------------------------------------------------------------


def _sheet(workbook: Any, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title)
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header, start=1):
        values = [name, *(str(r[index - 1]) for r in rows if r[index - 1] is not None)]
        sheet.column_dimensions[get_column_letter(index)].width = min(
            60, max(8, max(len(v) for v in values) + 2)
        )


def _matrix_rows(coverage: Coverage) -> tuple[list[str], list[list[Any]]]:
    header = ["unit", "name", "level", *coverage.platforms, "percent_sent"]
    rows: list[list[Any]] = []
    for unit in coverage.units:
        by_platform = {c.platform: c for c in unit.cells}
        cells = []
        for platform in coverage.platforms:
            cell = by_platform.get(platform)
            if cell is None:
                cells.append("")
            elif cell.lag_s is not None:
                cells.append(f"{cell.state} {duration(cell.lag_s)}")
            else:
                cells.append(cell.state)
        rows.append(
            [unit.unit.code, unit.unit.name, unit.unit.kind, *cells, unit.percent_sent]
            if unit.cells
            else [unit.unit.code, unit.unit.name, unit.unit.kind, *cells, None]
        )
    return header, rows


def write_coverage_xlsx(coverage: Coverage, path: Path) -> Path:
    """Sheets: levels (first, the summary), the unit × channel matrix, one row per cell."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    _sheet(workbook, "Theo cấp - levels", LEVEL_COLUMNS, _level_rows(coverage))
    header, rows = _matrix_rows(coverage)
    _sheet(workbook, "Ma trận - matrix", header, rows)
    _sheet(workbook, "Chi tiết - cells", CELL_COLUMNS, _cell_rows(coverage))
    workbook.properties.title = f"Coverage #{coverage.article.id}: {coverage.article.title}"
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def write_unit_record_xlsx(record: UnitRecord, path: Path) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    _sheet(workbook, "Hồ sơ - record", RECORD_COLUMNS, _record_rows(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


# --- PNG charts -----------------------------------------------------------------------------

_LEVEL_COLOURS = {
    "central": "#b2182b",
    "ministry": "#2166ac",
    "province": "#1b7837",
    "commune": "#e08214",
    "site": "#762a83",
}


SCATTER_LIMIT = 300


def _wrap_level(label: str, width: int = 15) -> str:
    """ "Xã, phường, đặc khu" → "Xã, phường,\nđặc khu": break at a comma, not inside words."""
    if len(label) <= width or ", " not in label:
        return label
    head, tail = label.rsplit(", ", 1)
    return f"{head},\n{tail}"


def _time_axis(horizon_min: float) -> tuple[float, str]:
    """Divide minutes by this and label the axis so long horizons stay readable."""
    if horizon_min <= 24 * 60:
        return 1.0, "Phút sau khi đăng · minutes since publication"
    return 60.0, "Giờ sau khi đăng · hours since publication"


def write_coverage_png(coverage: Coverage, path: Path) -> Path:
    """Two panels: cumulative % sent over time per level, and the lag distribution per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 11})
    figure, (curve_ax, lag_ax) = plt.subplots(
        1, 2, figsize=(15, 7.2), dpi=110, gridspec_kw={"width_ratios": [1.25, 1]}
    )
    article = coverage.article
    elapsed_min = max(0.0, (coverage.now - article.published_at).total_seconds() / 60.0)
    longest_min = max((lag / 60.0 for lag in coverage.total.lags_s), default=0.0)
    # Show the part where things happen: up to a bit past the last post (at least the first
    # hour, or the time elapsed if shorter), not the days of flat line after it.
    horizon_min = max(longest_min * 1.15, min(elapsed_min, 60.0), 1.0)
    scale, axis_label = _time_axis(horizon_min)

    groups = [*coverage.levels]
    for rollup in groups:
        points = coverage_curve(rollup.lags_s, rollup.targeted, horizon_min)
        curve_ax.plot(
            [m / scale for m, _ in points],
            [p for _, p in points],
            color=_LEVEL_COLOURS.get(rollup.key),
            linewidth=2.2,
            label=f"{rollup.label} · {rollup.key} ({rollup.sent}/{rollup.targeted})",
        )
    total_points = coverage_curve(coverage.total.lags_s, coverage.total.targeted, horizon_min)
    curve_ax.plot(
        [m / scale for m, _ in total_points],
        [p for _, p in total_points],
        color="black",
        linestyle="--",
        linewidth=1.6,
        label=f"Tổng · all ({coverage.total.sent}/{coverage.total.targeted})",
    )
    curve_ax.set_ylim(0, 105)
    curve_ax.set_xlim(0, horizon_min / scale)
    curve_ax.set_xlabel(axis_label)
    curve_ax.set_ylabel("Đã đăng (% lượt đăng) · sent (% of targeted deliveries)")
    curve_ax.set_title(
        "Tỷ lệ đã đăng theo thời gian\nCumulative share of targeted deliveries sent",
        fontsize=12,
    )
    curve_ax.grid(True, alpha=0.3)
    # Below the axes: inside, the legend would hide lines that reach 100 %.
    curve_ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=9.5, frameon=False
    )

    labels = []
    data = []
    colours = []
    for rollup in groups:
        wrapped = _wrap_level(rollup.label)
        labels.append(f"{wrapped}\n{rollup.key} (n={len(rollup.lags_s)})")
        data.append([lag / 60.0 / scale for lag in rollup.lags_s])
        colours.append(_LEVEL_COLOURS.get(rollup.key, "#555555"))
    positions = list(range(1, len(groups) + 1))
    with_data = [i for i, values in enumerate(data) if values]
    if with_data:
        boxes = lag_ax.boxplot(
            [data[i] for i in with_data],
            positions=[positions[i] for i in with_data],
            widths=0.5,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black", "linewidth": 1.8},
        )
        for patch, index in zip(boxes["boxes"], with_data, strict=True):
            patch.set_facecolor(colours[index])
            patch.set_alpha(0.35)
        for index in with_data:
            values = data[index]
            if len(values) > SCATTER_LIMIT:
                continue  # thousands of dots say less than the box alone
            # Spread the points sideways a little, deterministically, so equal lags show.
            offsets = [((k % 7) - 3) * 0.04 for k in range(len(values))]
            lag_ax.scatter(
                [positions[index] + o for o in offsets],
                values,
                s=22,
                color=colours[index],
                edgecolor="white",
                linewidth=0.5,
                zorder=3,
            )
    for index, values in enumerate(data):
        if not values:
            lag_ax.text(
                positions[index], 0, "chưa đăng\nnone sent", ha="center", va="bottom", fontsize=9
            )
    lag_ax.set_xticks(positions, labels, fontsize=9.5)
    lag_ax.set_xlim(0.4, len(groups) + 0.6)
    lag_ax.set_ylim(bottom=0)
    unit_word = "phút · minutes" if scale == 1.0 else "giờ · hours"
    lag_ax.set_ylabel(f"Độ trễ ({unit_word}) · lag from publication to post")
    lag_ax.set_title("Độ trễ theo cấp\nLag of each sent delivery, per level", fontsize=12)
    lag_ax.grid(True, axis="y", alpha=0.3)

    title = textwrap.shorten(article.title, 90, placeholder="…")
    figure.suptitle(
        f"Mức độ phủ sóng chỉ đạo: {title}",
        fontsize=15,
        fontweight="bold",
        y=0.985,
    )
    figure.text(
        0.5,
        0.915,
        f"Coverage of {article.kind} #{article.id}, published "
        f"{local_time(article.published_at)} (+07), as of {local_time(coverage.now)}: "
        f"{coverage.total.sent}/{coverage.total.targeted} deliveries sent "
        f"({coverage.total.percent_sent:.1f}%), "
        f"{coverage.total.units_reached}/{coverage.total.units_targeted} units reached",
        ha="center",
        fontsize=11,
        color="#333333",
    )
    figure.tight_layout(rect=(0, 0, 1, 0.935))
    figure.subplots_adjust(top=0.82)  # tight_layout leaves a gap under the subtitle
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


# --- recall ---------------------------------------------------------------------------------

RECALL_FORMATS = ("table", "json", "csv")
RECALL_COLUMNS = (
    "recall_id",
    "unit",
    "account",
    "platform",
    "state",
    "url",
    "remote_id",  # what names the post when it has no link (a Viber message token)
    "withdrawn_at",
    "lag_s",
    "note",
)
_WITHDRAWAL_STYLE = {
    "withdrawn": "green",
    "needs_manual_removal": "bold magenta",
    "failed": "bold red",
    "not_sent": "dim",
}


def recall_rows(report: RecallReport) -> list[list[Any]]:
    return [
        [
            report.recall.id,
            w.unit_code,
            w.account_id,
            w.platform,
            w.state,
            w.url,
            w.remote_id,
            w.withdrawn_at.astimezone(VIETNAM_TZ).isoformat() if w.withdrawn_at else None,
            None if (lag := report.lag_s(w)) is None else round(lag, 1),
            w.note,
        ]
        for w in report.withdrawals
    ]


def recall_csv(report: RecallReport) -> str:
    """One row per withdrawal (per delivery of the recalled posts)."""
    return _csv(RECALL_COLUMNS, recall_rows(report))


def recall_renderable(report: RecallReport) -> Group:
    info, total = report.recall, report.total
    what = f"post {info.post_id}" if info.post_id is not None else "every unit"
    head = Text.assemble(
        ("Thu hồi · recall ", "bold"),
        (f"#{info.id}", "bold cyan"),
        f": {info.article_title} ({what}) — {info.reason}\n",
        f"by {info.requested_by} at {local_time(info.requested_at)} (+07); ",
        (f"withdrawn on {total.withdrawn} of {total.channels} channels", "bold"),
        f"; needs manual removal {total.needs_manual_removal}; failed {total.failed}; "
        f"still working {total.waiting}; stopped before sending {info.cancelled}; "
        f"lag median {duration(total.median_lag_s) or '–'}, max {duration(total.max_lag_s) or '–'}",
    )
    table = Table(title="Theo nền tảng · by platform")
    for name in ("platform", "withdrawn", "channels", "manual", "failed", "waiting", "not sent"):
        table.add_column(name, justify="left" if name == "platform" else "right")
    table.add_column("lag median / max", justify="right")
    for r in (*report.by_platform, total):
        table.add_row(
            r.label,
            str(r.withdrawn),
            str(r.channels),
            str(r.needs_manual_removal),
            str(r.failed),
            str(r.waiting),
            str(r.not_sent),
            f"{duration(r.median_lag_s) or '–'} / {duration(r.max_lag_s) or '–'}",
        )
    parts: list[Any] = [head, table]
    people = [*report.manual, *report.failed]
    if people:
        todo = Table(title="Cần người gỡ · a person must remove these")
        for name in ("unit", "account", "state", "ở đâu · where", "why"):
            todo.add_column(name)
        for w in people:
            todo.add_row(
                w.unit_code,
                w.account_id,
                Text(w.state, style=_WITHDRAWAL_STYLE.get(w.state, "")),
                w.target,
                w.note or "",
            )
        parts.append(todo)
    return Group(*parts)


# --- receipt notes --------------------------------------------------------------------------

RECEIPTS_FORMATS = ("table", "json")
_NOTE_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red"}
# Severity words, Vietnamese first.
_SEVERITY_WORDS = {
    "info": "thông tin · info",
    "warning": "cảnh báo · warning",
    "error": "lỗi · error",
}


def receipts_renderable(report: ReceiptsReport) -> Group:
    """One row per note: the delivery went out; what its channel said beside it."""
    which = "cảnh báo · warnings" if report.warnings_only else "mọi ghi chú · every note"
    head = Text.assemble(
        ("Ghi chú của kênh khi đăng · channel notes on sent posts ", "bold"),
        f"({which}), {local_time(report.since)} – {local_time(report.until)} (+07): ",
        (f"{len(report.deliveries)} deliveries", "bold"),
    )
    table = Table()
    for name in ("gửi lúc · sent (+07)", "unit", "account", "post", "mức · level", "note"):
        table.add_column(name)
    for fact in report.deliveries:
        for note in fact.notes:
            table.add_row(
                local_time(fact.sent_at),
                fact.unit_code,
                fact.account_id,
                str(fact.post_id),
                Text(
                    _SEVERITY_WORDS.get(note.severity, note.severity),
                    _NOTE_STYLE.get(note.severity, ""),
                ),
                f"{note.code}: {note.message}",
            )
    if not report.deliveries:
        return Group(head, Text("Không có · none", style="dim"))
    return Group(head, table)


# --- directives overview --------------------------------------------------------------------

DIRECTIVES_FORMATS = ("table", "csv", "xlsx", "json")
# (CSV key, heading in the table and the XLSX sheet: Vietnamese first)
DIRECTIVES_COLUMNS = (
    ("article_id", "Mã · id"),
    ("published_at", "Ban hành · published (+07)"),
    ("title", "Tiêu đề · title"),
    ("recalled", "Thu hồi · recalled"),
    ("units_targeted", "Đơn vị · units"),
    ("units_reached", "Đã đến · reached"),
    ("percent_units_reached", "Phủ % · coverage %"),
    ("channels_planned", "Kênh · channels"),
    ("sent", "Đã đăng · sent"),
    ("attention", "Cần xử lý · attention"),
    ("in_progress", "Đang chờ · pending"),
    ("cancelled", "Đã hủy · cancelled"),
    ("withdrawn", "Đã gỡ · withdrawn"),
    ("withdrawal_channels", "Cần gỡ · to withdraw"),
    ("median_lag_min", "Trễ trung vị · median lag (min)"),
    ("p95_lag_min", "Trễ p95 · p95 lag (min)"),
)
TOTAL_LABEL = "Tổng · total"


def _progress_values(progress: Progress) -> list[Any]:
    return [
        progress.units_targeted,
        progress.units_reached,
        progress.percent_units_reached,
        progress.planned,
        progress.sent,
        progress.attention,
        progress.in_progress,
        progress.cancelled,
        progress.withdrawn,
        progress.withdrawal_channels,
        minutes(progress.median_lag_s),
        minutes(progress.p95_lag_s),
    ]


def directives_rows(overview: DirectivesOverview) -> list[list[Any]]:
    """One row per directive, newest first, then the totals line (no id, no time)."""
    rows: list[list[Any]] = [
        [
            r.article.id,
            r.article.published_at.astimezone(VIETNAM_TZ).isoformat(),
            r.article.title,
            "yes" if r.recalled else "",
            *_progress_values(r.progress),
        ]
        for r in overview.rows
    ]
    total_title = f"{TOTAL_LABEL} ({len(overview.rows)} chỉ đạo · directives)"
    rows.append(["", "", total_title, "", *_progress_values(overview.total)])
    return rows


def directives_csv(overview: DirectivesOverview) -> str:
    return _csv([key for key, _ in DIRECTIVES_COLUMNS], directives_rows(overview))


def write_directives_xlsx(overview: DirectivesOverview, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    rows = directives_rows(overview)
    _sheet(workbook, "Chỉ đạo - directives", [h for _, h in DIRECTIVES_COLUMNS], rows)
    sheet = workbook["Chỉ đạo - directives"]
    for cell in sheet[len(rows) + 1]:  # the totals line (row 1 is the heading)
        cell.font = Font(bold=True)
    workbook.properties.title = (
        f"Directives {local_time(overview.since)} → {local_time(overview.until)} (+07)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def period_days(overview: DirectivesOverview) -> tuple[date, date]:
    """The first and the last day of the period in Hà Nội (`until` is the midnight after)."""
    last = (overview.until.astimezone(VIETNAM_TZ) - timedelta(microseconds=1)).date()
    return overview.since.astimezone(VIETNAM_TZ).date(), last


def period_text(overview: DirectivesOverview) -> str:
    first, last = period_days(overview)
    return f"{first} → {last}"


def _progress_cells(progress: Progress) -> list[str]:
    lag = "—"
    if progress.median_lag_s is not None:
        lag = f"{duration(progress.median_lag_s)}/{duration(progress.p95_lag_s)}"
    return [
        f"{progress.units_reached}/{progress.units_targeted}",
        f"{progress.percent_units_reached:.0f}%" if progress.units_targeted else "—",
        str(progress.planned),
        str(progress.sent),
        str(progress.attention),
        str(progress.in_progress),
        str(progress.cancelled),
        f"{progress.withdrawn}/{progress.withdrawal_channels}"
        if progress.withdrawal_channels
        else "",
        lag,
    ]


_NUMBER_HEADINGS = (
    "Đơn vị\nunits",
    "Phủ\ncover",
    "Kênh\nchan.",
    "Đăng\nsent",
    "Lỗi\nattn",
    "Chờ\nwait",
    "Hủy\ncanc.",
    "Gỡ\nwdrn",
    "Trễ\nlag",
)
_ATTENTION_COLUMN = _NUMBER_HEADINGS.index("Lỗi\nattn")
# Below this many columns the titles go in a numbered list above the table: twelve columns
# do not fit in 80, and a title squeezed to nothing is worse than one printed apart.
WIDE_ENOUGH = 130
_TITLE_WIDTH = 44


class DirectivesView:
    """The overview for a terminal: short two-line headings, counts paired
    ("reached/targeted", "withdrawn/to withdraw", "median/p95"), a legend below; on a
    narrow terminal the titles are listed above the table instead of in it."""

    def __init__(self, overview: DirectivesOverview) -> None:
        self.overview = overview

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        overview = self.overview
        wide = options.max_width >= WIDE_ENOUGH
        yield Text.assemble(
            ("Tổng quan chỉ đạo · directives overview ", "bold"),
            (period_text(overview), "bold cyan"),
            f" (+07)\nphạm vi · scope {overview.scope}; "
            f"báo cáo lúc · as of {local_time(overview.generated_at)}",
        )
        titles = [
            textwrap.shorten(
                f"↩ {r.article.title}" if r.recalled else r.article.title,
                _TITLE_WIDTH if wide else max(20, options.max_width - 20),
                placeholder="…",
            )
            for r in overview.rows
        ]
        if not wide:
            for row, title in zip(overview.rows, titles, strict=True):
                yield Text(f"#{row.article.id} {local_time(row.article.published_at)}  {title}")
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        table.add_column("#", justify="right", no_wrap=True)
        if wide:
            table.add_column("Ban hành\npublished", no_wrap=True)
            table.add_column("Tiêu đề\ntitle", no_wrap=True)
        for heading in _NUMBER_HEADINGS:
            table.add_column(heading, justify="right", no_wrap=True)
        for row, title in zip(overview.rows, titles, strict=True):
            values = _progress_cells(row.progress)
            cells: list[str | Text] = list(values)
            if row.progress.attention:
                cells[_ATTENTION_COLUMN] = Text(values[_ATTENTION_COLUMN], style="bold red")
            published = row.article.published_at.astimezone(VIETNAM_TZ).strftime("%d/%m %H:%M")
            lead = [str(row.article.id), published, title] if wide else [str(row.article.id)]
            table.add_row(*lead, *cells)
        table.add_section()
        total = f"{TOTAL_LABEL} ({len(overview.rows)})"
        lead = ["", "", total] if wide else ["Σ"]
        table.add_row(*lead, *_progress_cells(overview.total), style="bold")
        yield table
        yield Text(
            ("" if wide else f"Σ: {total}; ")
            + "đơn vị: đã đến/được giao · units reached/targeted; phủ · coverage = reached ÷ "
            "targeted; kênh · channels planned; lỗi · needs attention (failed, expired, "
            "unknown, review); chờ · on the way; gỡ · withdrawn/to withdraw; ↩ thu hồi · "
            "recalled; trễ · lag published → sent, median/p95",
            style="dim",
        )


def directives_renderable(overview: DirectivesOverview) -> DirectivesView:
    return DirectivesView(overview)
