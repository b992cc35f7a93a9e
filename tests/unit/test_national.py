"""plan_import: what an import writes and reports, on small divisions made here."""

from __future__ import annotations

import tomllib
import unicodedata

from publisher.domain import Unit
from publisher.national import (
    CODE_LIST,
    Division,
    load_division,
    plan_import,
    render,
)
from publisher.settings.directory import NationalUnitsFile

ROOT = Unit("CP", "Cổng TTĐT Chính phủ", "central", None, "internal")


def division(*communes: tuple[str, str, str]) -> Division:
    return Division(
        source="test 1",
        code_list=CODE_LIST,
        provinces=(
            Unit("01", "Thành phố Hà Nội", "province", None, CODE_LIST, "Hà Nội"),
            Unit("15", "Tỉnh Lào Cai", "province", None, CODE_LIST, "Lào Cai"),
        ),
        communes=tuple(Unit(c, n, "commune", p, CODE_LIST) for c, n, p in communes),
    )


TWO = division(("00070", "Phường Hoàn Kiếm", "01"), ("02650", "Xã Bảo Hà", "15"))


def reread(text: str) -> NationalUnitsFile:
    return NationalUnitsFile.model_validate(tomllib.loads(text))


def test_provinces_missing_from_units_toml_are_added_under_the_root() -> None:
    plan = plan_import(TWO, [ROOT])
    assert plan.problems == []
    assert plan.added_provinces == ["01", "15"]
    assert [(u.code, u.parent_code) for u in plan.units] == [
        ("01", "CP"),
        ("15", "CP"),
        ("00070", "01"),
        ("02650", "15"),
    ]
    written = reread(render(plan))
    assert [u.code for u in written.unit] == ["01", "15", "00070", "02650"]
    assert written.code_list == CODE_LIST


def test_a_reused_code_naming_another_province_stops_the_import() -> None:
    old = Unit("15", "Tỉnh Yên Bái", "province", "CP", "QD124/2004")
    plan = plan_import(TWO, [ROOT, old])
    assert len(plan.problems) == 1
    assert '"Tỉnh Yên Bái"' in plan.problems[0]
    assert '"Tỉnh Lào Cai"' in plan.problems[0]
    # Leaving that province out lets the rest through.
    assert plan_import(TWO, [ROOT, old], only=["01"]).problems == []


def test_a_province_no_longer_in_the_list_is_reported_and_kept() -> None:
    gone = Unit("02", "Tỉnh Hà Giang", "province", "CP", CODE_LIST)
    plan = plan_import(TWO, [ROOT, gone])
    assert plan.problems == []
    assert any('"02"' in note and "kept" in note for note in plan.notes)


def test_one_province_keeps_the_other_provinces_communes() -> None:
    first = reread(render(plan_import(TWO, [ROOT])))
    newer = division(("00070", "Phường Hoàn Kiếm", "01"), ("00071", "Phường Mới", "01"))
    plan = plan_import(newer, [ROOT], previous=first, only=["01"])
    assert {u.code for u in plan.units} == {"01", "15", "00070", "00071", "02650"}


def test_a_commune_gone_from_the_list_is_kept_and_reported() -> None:
    first = reread(render(plan_import(TWO, [ROOT])))
    smaller = division(("00070", "Phường Hoàn Kiếm", "01"))
    plan = plan_import(smaller, [ROOT], previous=first)
    assert "02650" in {u.code for u in plan.units}
    assert any('"02650"' in note for note in plan.notes)


def test_samples_are_matched_by_name_within_their_province_whatever_the_tone_style() -> None:
    hanoi = Unit("01", "Thành phố Hà Nội", "province", "CP", CODE_LIST)
    sample = Unit("S01001", "Phường Hoàn Kiếm", "commune", "01", "sample")
    elsewhere = Unit("S15001", "Phường Hoàn Kiếm", "commune", "15", "sample")
    lone = Unit("S01002", "Xã Không Có", "commune", "01", "sample")
    plan = plan_import(TWO, [ROOT, hanoi, sample, lone])
    assert [(r.code, r.by) for r in plan.replaced] == [("S01001", "00070")]
    assert any('"S01002"' in note for note in plan.notes)
    plan = plan_import(TWO, [ROOT, hanoi, elsewhere])
    assert plan.replaced == []
    old_style = division(("00100", "Xã Hoà An", "01"))
    new_style = Unit("S01003", "Xã Hòa An", "commune", "01", "sample")
    plan = plan_import(old_style, [ROOT, hanoi, new_style])
    assert [(r.code, r.by) for r in plan.replaced] == [("S01003", "00100")]


def test_render_is_deterministic() -> None:
    assert render(plan_import(TWO, [ROOT])) == render(plan_import(TWO, [ROOT]))


def test_the_packaged_division_loads_offline_and_is_nfc() -> None:
    found = load_division()
    assert found.source.startswith("vietnam-provinces 2025.10.1")
    assert len(found.provinces) == len({p.code for p in found.provinces})
    assert all(len(p.code) == 2 for p in found.provinces)
    assert all(p.name.startswith(("Tỉnh ", "Thành phố ")) for p in found.provinces)
    assert all(unicodedata.is_normalized("NFC", u.name) for u in found.communes)
    assert len({c.code for c in found.communes}) == len(found.communes)
