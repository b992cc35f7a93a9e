"""The unit-tree checks of `load_config` (`_check_tree`) give exactly the problems the walk
from every unit to the root gave before the walk learnt to stop at units already known to
reach the root — on random trees with duplicates, unknown parents and cycles."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.settings import ConfigError, _check_tree, load_config
from publisher.settings.directory import UnitEntry


def walk_every_unit(entries: list[tuple[str, int, UnitEntry]], problems: list[str]) -> None:
    """The code before (the oracle): each unit's chain of parents walked in full."""
    first_at: dict[str, tuple[str, int]] = {}
    for file, index, unit in entries:
        if unit.code in first_at:
            first_file, first_index = first_at[unit.code]
            where = (
                f"unit[{first_index}]"
                if first_file == file
                else f"{first_file} unit[{first_index}]"
            )
            problems.append(
                f'{file}: unit[{index}].code: duplicate code "{unit.code}" (first at {where})'
            )
        else:
            first_at[unit.code] = (file, index)
    parents = {u.code: u.parent for _, _, u in entries}
    for file, index, unit in entries:
        if unit.parent is not None and unit.parent not in parents:
            problems.append(f'{file}: unit[{index}].parent: unknown unit "{unit.parent}"')
    reported: set[str] = set()
    for file, index, unit in entries:
        trail = [unit.code]
        current = unit.parent
        while current is not None and current in parents:
            if current in trail:
                cycle = [*trail[trail.index(current) :], current]
                if not reported.intersection(cycle):
                    problems.append(
                        f"{file}: unit[{index}].parent: cycle in the unit tree: "
                        + " → ".join(cycle)
                    )
                reported.update(cycle)
                break
            trail.append(current)
            current = parents[current]
    if entries and not any(u.parent is None for _, _, u in entries):
        problems.append("units.toml: unit: no root unit (one unit must have no parent)")


CODES = [f"U{n}" for n in range(12)]


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, int, UnitEntry]]:
    size = draw(st.integers(0, 14))
    entries = []
    for index in range(size):
        code = draw(st.sampled_from(CODES))
        parent = draw(st.none() | st.sampled_from([*CODES, "X9"]))  # X9: never a unit
        file = draw(st.sampled_from(["units.toml", "units-national.toml"]))
        entries.append((file, index, UnitEntry(code=code, name=code, kind="k", parent=parent)))
    return entries


@settings(max_examples=400, deadline=None)
@given(trees())
def test_same_problems_as_walking_every_unit_to_the_root(
    entries: list[tuple[str, int, UnitEntry]],
) -> None:
    expected: list[str] = []
    walk_every_unit(entries, expected)
    found: list[str] = []
    _check_tree(entries, found)
    assert found == expected


def test_a_cycle_behind_a_duplicate_code_is_still_reported() -> None:
    """U1 first as a root, again under U2, whose parent is U1: the cycle runs through the
    second entry's parent, which the first walk must not have taken as rooted."""
    entries = [
        ("units.toml", 0, UnitEntry(code="U1", name="a", kind="k")),
        ("units.toml", 1, UnitEntry(code="U1", name="a", kind="k", parent="U2")),
        ("units.toml", 2, UnitEntry(code="U2", name="b", kind="k", parent="U1")),
    ]
    problems: list[str] = []
    _check_tree(entries, problems)
    assert problems == [
        'units.toml: unit[1].code: duplicate code "U1" (first at unit[0])',
        "units.toml: unit[1].parent: cycle in the unit tree: U1 → U2 → U1",
    ]


def test_a_toml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    """The parser changed (compiled tomli for tomllib): the message still says where."""
    (tmp_path / "units.toml").write_text('[[unit]]\ncode = "CP"\nname = \n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert raised.value.problems == [
        "units.toml: (file): not valid TOML: Invalid value (at line 3, column 8)"
    ]
