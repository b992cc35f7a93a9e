"""The whole country's unit tree from the official code list (issue 13).

`publisher units import` reads the 2025 division (34 provinces, their communes; codes of
Decision 19/2025/QĐ-TTg, "QD19/2025") from a packaged data set and writes it to a generated
configuration file, `config/units-national.toml`, beside the hand-written `units.toml`. The
loader reads both; `units.toml` keeps the root, ministries and provinces people maintain.
See docs/decisions/national-units.md.

What the plan does, against `units.toml` and the previous generated file:
- a province of the list already in `units.toml` with the same code and name is used as the
  parent of its communes; one missing there is added to the generated file under the root;
  one whose code names a different province in `units.toml` is a conflict (codes were reused
  across lists): the import stops and says so;
- a province of `units.toml` that is not in the list (merged away) is reported and kept;
- a sample commune (`code_list = "sample"`) whose name is an official commune of the same
  province is *replaced*: it stays (posts and deliveries keep pointing at it) but inactive,
  merged into the official unit, which takes its accounts, roles and sources;
- a commune of the previous generated file that is no longer in the list is reported and
  kept; with `--province`, other provinces' communes are kept as they were.

`plan_import` is pure; `load_division` reads the package; `render` makes the file's text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli

from publisher import audit
from publisher.domain import Role, Unit, UnitKind, User
from publisher.identity import Identity
from publisher.settings import NATIONAL_UNITS_FILE, Config, ConfigError, load_config
from publisher.settings.directory import NationalUnitsFile, UnitsFile
from publisher.store.sql import SqlRepository
from publisher.text import matching_key
from publisher.workspace import Workspace, sync_directory

CODE_LIST = "QD19/2025"
NATIONAL_FILE = NATIONAL_UNITS_FILE
SAMPLE_CODE_LIST = "sample"
SOURCES = ("vietnam-provinces",)
PACKAGE = "vietnam-provinces"  # pinned in pyproject.toml


class DivisionError(Exception):
    """The division data cannot be read, or does not look like the list it claims to be."""


@dataclass(frozen=True, slots=True)
class Division:
    """One code list: provinces (no parent yet) and communes (parent = province code)."""

    source: str  # e.g. "vietnam-provinces 2025.10.1 (data 2025-10-18)"
    code_list: str
    provinces: tuple[Unit, ...]
    communes: tuple[Unit, ...]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def load_division(source: str = "vietnam-provinces") -> Division:
    """The 2025 division from the pinned `vietnam-provinces` package (data ships inside it)."""
    if source not in SOURCES:
        raise DivisionError(f"--from {source}: unknown source; known: {', '.join(SOURCES)}")
    try:
        import vietnam_provinces
        from vietnam_provinces import Province, VietNamDivisionType, Ward
    except ImportError as error:
        raise DivisionError(
            f"{PACKAGE} is not installed ({error}); pip install {PACKAGE}"
        ) from None
    city = VietNamDivisionType.THANH_PHO_TRUNG_UONG
    provinces: list[Unit] = []
    for p in Province.iter_all():
        name = _nfc(p.name)
        if p.division_type is city:
            short = name.removeprefix("Thành phố ").strip()
        else:  # the package names a tỉnh without its title: "Cao Bằng"
            short = name.removeprefix("Tỉnh ").strip()
            name = f"Tỉnh {short}"
        provinces.append(
            Unit(f"{int(p.code):02d}", name, UnitKind.PROVINCE.value, None, CODE_LIST, short)
        )
    communes = [
        Unit(
            f"{int(w.code):05d}",
            _nfc(w.name),
            UnitKind.COMMUNE.value,
            f"{int(w.province_code):02d}",
            CODE_LIST,
        )
        for w in Ward.iter_all()
    ]
    codes = {p.code for p in provinces}
    strays = sorted({c.parent_code or "" for c in communes} - codes)
    if strays or not provinces or not communes:
        raise DivisionError(
            f"{PACKAGE}: inconsistent data ({len(provinces)} provinces, {len(communes)} "
            f"communes, communes under unknown provinces: {strays})"
        )
    version = metadata.version(PACKAGE)
    data_version = getattr(vietnam_provinces, "__data_version__", "?")
    return Division(
        source=f"{PACKAGE} {version} (data {data_version})",
        code_list=CODE_LIST,
        provinces=tuple(sorted(provinces, key=lambda u: u.code)),
        communes=tuple(sorted(communes, key=lambda u: (u.parent_code or "", u.code))),
    )


@dataclass(frozen=True, slots=True)
class Replacement:
    code: str  # the sample unit
    by: str  # the official unit that takes its place
    name: str


@dataclass
class ImportPlan:
    """What an import would write, and what it has to tell a person."""

    source: str
    code_list: str
    root: str
    provinces: list[str]  # the provinces whose communes this run took from the list
    units: list[Unit]  # the generated file's units: added provinces, then communes
    replaced: list[Replacement]
    matched_provinces: list[str] = field(default_factory=list)  # already in units.toml
    added_provinces: list[str] = field(default_factory=list)  # written to the generated file
    notes: list[str] = field(default_factory=list)  # reported, nothing dropped
    problems: list[str] = field(default_factory=list)  # the import cannot go ahead

    @property
    def communes(self) -> int:
        return sum(1 for u in self.units if u.kind == UnitKind.COMMUNE.value)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "code_list": self.code_list,
            "provinces_imported": len(self.provinces),
            "provinces_in_units_toml": len(self.matched_provinces),
            "provinces_added": len(self.added_provinces),
            "communes": self.communes,
            "units_in_file": len(self.units),
            "samples_replaced": {r.code: r.by for r in self.replaced},
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


def base_units(units_file: UnitsFile) -> list[Unit]:
    """`units.toml` as units (the file's `code_list` filling in each unit's own)."""
    return [
        Unit(
            u.code,
            u.name,
            u.kind,
            u.parent,
            u.code_list if u.code_list is not None else units_file.code_list,
            u.short_name,
        )
        for u in units_file.unit
    ]


def national_units(file: NationalUnitsFile) -> list[Unit]:
    return [
        Unit(
            u.code,
            u.name,
            u.kind,
            u.parent,
            u.code_list if u.code_list is not None else file.code_list,
            u.short_name,
        )
        for u in file.unit
    ]


def plan_import(
    division: Division,
    base: Sequence[Unit],
    previous: NationalUnitsFile | None = None,
    only: Sequence[str] = (),
) -> ImportPlan:
    """The generated file's content for `division` beside `base` (the units of units.toml)."""
    listed = {p.code: p for p in division.provinces}
    unknown = [code for code in only if code not in listed]
    roots = [u.code for u in base if u.parent_code is None]
    plan = ImportPlan(
        source=division.source,
        code_list=division.code_list,
        root=roots[0] if roots else "",
        provinces=sorted(set(only)) if only else sorted(listed),
        units=[],
        replaced=[],
    )
    for code in unknown:
        plan.problems.append(
            f"--province {code}: not a province in {division.code_list} ({division.source}); "
            f"known: {', '.join(sorted(listed))}"
        )
    if not roots:
        plan.problems.append("units.toml: unit: no root unit to put the provinces under")
    if plan.problems:
        return plan
    chosen = set(plan.provinces)
    by_code = {u.code: u for u in base}
    prior = national_units(previous) if previous is not None else []
    prior_by_code = {u.code: u for u in prior}

    # Provinces: in units.toml (matched or conflicting), or added to the generated file.
    for code, province in listed.items():
        mine = by_code.get(code)
        if mine is None:
            if code in chosen or code in prior_by_code:
                plan.added_provinces.append(code)
            continue
        if matching_key(mine.name) != matching_key(province.name) or (
            mine.code_list not in ("", division.code_list)
        ):
            if code in chosen:
                plan.problems.append(
                    f'units.toml: unit "{code}": "{mine.name}" (code list '
                    f'"{mine.code_list or "?"}") but {division.code_list} code {code} is '
                    f'"{province.name}": codes were reused across lists; fix units.toml or '
                    f"leave this province out (--province)"
                )
            continue
        plan.matched_provinces.append(code)
    for unit in base:
        if unit.kind == UnitKind.PROVINCE.value and unit.code not in listed:
            plan.notes.append(
                f'units.toml: province "{unit.code}" ({unit.name}) is not in '
                f"{division.code_list} (merged?): kept as it is"
            )
    if plan.problems:
        return plan

    added = set(plan.added_provinces)
    units: dict[str, Unit] = {}
    for code in sorted(added):
        units[code] = Unit(
            code,
            listed[code].name,
            UnitKind.PROVINCE.value,
            plan.root,
            division.code_list,
            listed[code].short_name,
        )
    # Communes: this run's provinces from the list, other provinces as they were.
    fresh = {c.code: c for c in division.communes if c.parent_code in chosen}
    for unit in prior:
        if unit.kind == UnitKind.PROVINCE.value:
            continue
        if unit.parent_code not in chosen:
            units[unit.code] = unit
        elif unit.code not in fresh:
            units[unit.code] = unit
            plan.notes.append(
                f'{NATIONAL_FILE}: commune "{unit.code}" ({unit.name}, province '
                f"{unit.parent_code}) is no longer in {division.source}: kept; merge it "
                "into its successor or remove it by hand"
            )
    for code, commune in fresh.items():
        mine = by_code.get(code)
        if mine is not None:
            if matching_key(mine.name) != matching_key(commune.name):
                plan.problems.append(
                    f'units.toml: unit "{code}": "{mine.name}" but {division.code_list} '
                    f'code {code} is "{commune.name}"'
                )
            continue  # already in units.toml: not written twice
        units[code] = commune
    plan.units = sorted(
        units.values(),
        key=lambda u: (u.kind != UnitKind.PROVINCE.value, u.parent_code or "", u.code),
    )

    # Sample communes: replaced by the official commune of the same name in the same province.
    official: dict[tuple[str, str], str] = {}
    for unit in plan.units:
        if unit.kind == UnitKind.COMMUNE.value and unit.parent_code is not None:
            official.setdefault((unit.parent_code, matching_key(unit.name)), unit.code)
    earlier = {r.code: r for r in previous.replaced} if previous is not None else {}
    in_file = {u.code for u in plan.units}
    for unit in base:
        if unit.code_list != SAMPLE_CODE_LIST or unit.parent_code is None:
            continue
        found = official.get((unit.parent_code, matching_key(unit.name)))
        if found is not None:
            plan.replaced.append(Replacement(unit.code, found, unit.name))
        elif unit.code in earlier and earlier[unit.code].by in in_file:
            plan.replaced.append(Replacement(unit.code, earlier[unit.code].by, unit.name))
        elif unit.parent_code in chosen:
            plan.notes.append(
                f'units.toml: sample unit "{unit.code}" ({unit.name}) has no commune of that '
                f"name in province {unit.parent_code} of {division.code_list}: kept as it is"
            )
    children = {u.parent_code for u in [*base, *plan.units]}
    for replacement in plan.replaced:
        if replacement.code in children:
            plan.problems.append(
                f'units.toml: sample unit "{replacement.code}" has units below it; move them '
                f'before it is replaced by "{replacement.by}"'
            )
    return plan


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; non-ASCII stays as it is)."""
    return json.dumps(text, ensure_ascii=False)


def _inline(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "{ " + ", ".join(f"{k} = {_string(v)}" for k, v in pairs if v) + " }"


def render(plan: ImportPlan) -> str:
    """The generated file: deterministic, so an import that changes nothing writes the same."""
    lines = [
        "# Generated by `publisher units import`; do not edit: run the import again instead.",
        "# The official unit tree (docs/decisions/national-units.md). units.toml keeps the",
        "# root, ministries and provinces; this file adds the communes (and any province",
        "# units.toml lacks). A replaced unit stays in the database, inactive and merged into",
        "# its official successor, which takes its accounts, roles and sources.",
        f"generated_by = {_string(plan.source)}",
        f"code_list = {_string(plan.code_list)}",
        "replaced = [",
        *(
            f"  {_inline([('code', r.code), ('by', r.by), ('name', r.name)])},"
            for r in plan.replaced
        ),
        "]",
        "unit = [",
    ]
    for u in plan.units:
        pairs: list[tuple[str, str | None]] = [
            ("code", u.code),
            ("name", u.name),
            ("short_name", u.short_name),
            ("kind", u.kind),
            ("parent", u.parent_code),
        ]
        if u.code_list != plan.code_list:
            pairs.append(("code_list", u.code_list))
        lines.append(f"  {_inline(pairs)},")
    lines.append("]")
    return "\n".join(lines) + "\n"


# --- the use case: `publisher units import` ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    plan: ImportPlan
    dry_run: bool
    changed: bool  # the generated file's text changed (or would change)
    units_total: int  # units in the configuration afterwards (or as it would be)
    path: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.summary(),
            "dry_run": self.dry_run,
            "changed": self.changed,
            "units_total": self.units_total,
            "file": self.path,
        }


def is_root_admin(user: User, root: str) -> bool:
    """An admin grant at the root unit reaching its whole subtree."""
    return any(g.role is Role.ADMIN and g.unit_code == root and g.subtree for g in user.grants)


def _check_with(folder: Path, text: str) -> Config:
    """The configuration as it would be with `text` as the generated file (nothing written
    in `folder`): a copy is checked in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="units-import-") as scratch:
        for path in folder.glob("*.toml"):
            if path.name != NATIONAL_FILE:
                shutil.copyfile(path, Path(scratch) / path.name)
        (Path(scratch) / NATIONAL_FILE).write_text(text, encoding="utf-8")
        config = load_config(Path(scratch))
    config.folder = folder
    return config


def _write_atomically(path: Path, text: str) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def run_import(
    workspace: Workspace,
    identity: Identity,
    *,
    source: str = "vietnam-provinces",
    provinces: Sequence[str] = (),
    dry_run: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportResult:
    """Plan, check and (unless `dry_run`) write the generated file, bring the database's
    directory in line, and audit it. Raises `ConfigError` (the configuration, before or
    after, has problems; nothing written), `DivisionError`, or `PermissionDenied`
    (audited)."""
    from publisher.service import PermissionDenied  # the service layer imports settings

    folder = workspace.config_dir
    current = load_config(folder)
    engine = workspace.engine()
    is_sqlite = engine.dialect.name == "sqlite"
    user, actor = identity.user, identity.actor_label
    if not is_root_admin(user, current.root.code):
        refusal = PermissionDenied(
            f"{user.username} may not import units: only an admin of the root unit "
            f'"{current.root.code}" (with its subtree) may',
            username=user.username,
            attempted="units_import",
            unit=current.root.code,
            target=f"unit:{current.root.code}",
        )
        with engine.connect() as conn:
            if is_sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                audit.append(
                    conn,
                    is_sqlite,
                    at=clock(),
                    actor=actor,
                    action="refused",
                    target=refusal.target,
                    details={
                        "attempted": refusal.attempted,
                        "unit": refusal.unit,
                        "reason": str(refusal),
                        **identity.audit_details(),
                    },
                )
        engine.dispose()
        raise refusal
    path = folder / NATIONAL_FILE
    previous: NationalUnitsFile | None = None
    if path.is_file():
        previous = NationalUnitsFile.model_validate(
            tomli.loads(path.read_text(encoding="utf-8"))
        )  # load_config above has already checked it
    units_file = UnitsFile.model_validate(
        tomli.loads((folder / "units.toml").read_text(encoding="utf-8"))
    )
    plan = plan_import(load_division(source), base_units(units_file), previous, provinces)
    if plan.problems:
        raise ConfigError(plan.problems)
    text = render(plan)
    changed = previous is None or path.read_text(encoding="utf-8") != text
    config = _check_with(folder, text)
    result = ImportResult(plan, dry_run, changed, len(config.units), str(path))
    if dry_run:
        engine.dispose()
        return result
    if changed:
        _write_atomically(path, text)
    sync_directory(config, SqlRepository(engine))
    with engine.connect() as conn:
        if is_sqlite:
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            audit.append(
                conn,
                is_sqlite,
                at=clock(),
                actor=actor,
                action="units_import",
                target=f"unit:{current.root.code}",
                details={
                    "source": plan.source,
                    "code_list": plan.code_list,
                    "provinces": len(plan.provinces),
                    "communes": plan.communes,
                    "units_total": len(config.units),
                    "replaced": {r.code: r.by for r in plan.replaced},
                    "notes": len(plan.notes),
                    "changed": changed,
                    "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    **identity.audit_details(),
                },
            )
    engine.dispose()
    return result
