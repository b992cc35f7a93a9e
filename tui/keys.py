"""Key bindings whose labels follow the language: rebuilt on every language switch.

Textual merges BINDINGS once per class; labels must change at run time, so each screen
declares `KEYS` (English message ids) and `apply_keys` builds the node's bindings in the
current language on top of its class bindings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode

from tui.i18n import _


class Key(NamedTuple):
    keys: str  # comma-separated, as Textual spells them
    action: str
    label: str  # English message id
    show: bool = True
    priority: bool = False
    key_display: str | None = None


def apply_keys(node: DOMNode, keys: Sequence[Key]) -> None:
    merged = type(node)._merged_bindings
    bindings = merged.copy() if merged is not None else BindingsMap()
    made = BindingsMap(
        [
            Binding(
                k.keys,
                k.action,
                _(k.label),
                show=k.show,
                priority=k.priority,
                key_display=k.key_display,
            )
            for k in keys
        ]
    )
    for key, found in made.key_to_bindings.items():
        bindings.key_to_bindings[key] = found
    node._bindings = bindings
