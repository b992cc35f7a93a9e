"""`init_through_slots`: Article and DedupKeys are made as the dataclass's own `__init__` would
make them — same parameters and defaults, same fields, same errors, still frozen."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.domain import Article, init_through_slots
from publisher.ingest.store import DedupKeys


def twin(cls: type) -> type:
    """The same fields as a plain frozen, slotted dataclass (with the generated __init__)."""
    return dataclasses.make_dataclass(
        cls.__name__,
        [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)],
        frozen=True,
        slots=True,
    )


@pytest.mark.parametrize("cls", [Article, DedupKeys])
def test_same_parameters_and_defaults(cls: type) -> None:
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(twin(cls).__init__).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


values = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.tuples(st.text(max_size=3)))


@pytest.mark.parametrize("cls", [Article, DedupKeys])
@settings(max_examples=300)
@given(data=st.data())
def test_same_fields_and_errors(cls: type, data: st.DataObject) -> None:
    other = twin(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    args = data.draw(st.lists(values, max_size=len(names) + 1))
    kwargs = data.draw(
        st.dictionaries(st.sampled_from([*names, "nonsense"]), values, max_size=len(names))
    )

    def make(kind: type) -> Any:
        try:
            return dataclasses.astuple(kind(*args, **kwargs))
        except TypeError as error:
            return type(error), str(error).replace(kind.__qualname__, "")

    assert make(cls) == make(other)


def test_still_frozen_and_equal_to_itself() -> None:
    article = Article("g", "u", "t", None)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.title = "x"  # type: ignore[misc]
    assert article == dataclasses.replace(article) == Article("g", "u", "t", None)  # type: ignore[arg-type]
    assert hash(DedupKeys("a", "b", "c")) == hash(
        DedupKeys(guid="a", canonical_url="b", content_hash="c")
    )


def test_a_default_factory_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        init_through_slots(WithFactory)
