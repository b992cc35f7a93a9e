"""Routing: which units receive an article, and on which of their channel accounts. Pure.

A central directive cascades down the tree to the levels and units its rule names (filtered
by category); a unit's own article goes to its own channels; a unit may nominate an article
upward, to its parent or the central portal, which takes it into its own flow. An account
bound to a language receives only articles in that language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from publisher.domain import (
    VIDEO_ONLY_PLATFORMS,
    AccountStatus,
    Article,
    ArticleKind,
    ChannelAccount,
    Unit,
)
from publisher.settings.workflow import RoutingFile


@dataclass(frozen=True, slots=True)
class Target:
    unit_code: str
    accounts: tuple[ChannelAccount, ...]


class UnitTree:
    """The unit directory as a tree, for subtree and ancestor questions."""

    def __init__(self, units: Iterable[Unit]) -> None:
        self.units: dict[str, Unit] = {u.code: u for u in units}
        self.children: dict[str, list[str]] = {}
        for unit in self.units.values():
            if unit.parent_code is not None:
                self.children.setdefault(unit.parent_code, []).append(unit.code)
        roots = [u.code for u in self.units.values() if u.parent_code is None]
        self.root = roots[0] if roots else None

    def ancestors(self, code: str) -> list[str]:
        """Codes above `code`, nearest first."""
        found: list[str] = []
        current = self.units.get(code)
        while current is not None and current.parent_code is not None:
            if current.parent_code in found:
                break  # a cycle: configuration checks report it; do not loop here
            found.append(current.parent_code)
            current = self.units.get(current.parent_code)
        return found

    def subtree(self, code: str) -> list[str]:
        """`code` and every unit below it."""
        out: list[str] = []
        seen: set[str] = set()  # a set: `in out` made the whole country's tree quadratic
        stack = [code]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            out.append(current)
            stack.extend(self.children.get(current, ()))
        return out

    def within(self, code: str, top: str) -> bool:
        return code == top or top in self.ancestors(code)


def accounts_for(
    unit_code: str,
    language: str,
    by_unit: Mapping[str, Sequence[ChannelAccount]],
    has_video: bool = True,
) -> tuple[ChannelAccount, ...]:
    """The unit's accounts that can take the article: enabled, in its language, and not a
    video-only platform when the article has no video (a delivery that can only fail is
    noise in every report)."""
    return tuple(
        account
        for account in by_unit.get(unit_code, ())
        if account.status is not AccountStatus.DISABLED
        and (account.language is None or account.language == language)
        and (has_video or account.platform not in VIDEO_ONLY_PLATFORMS)
    )


def directive_units(article: Article, tree: UnitTree, rules: RoutingFile) -> list[str]:
    """The units a directive reaches, root first, in tree order."""
    if tree.root is None:
        return []
    rule = rules.rule_for(article.category)
    if rule is None:
        return [tree.root]
    if article.language not in rules.cascade_languages:
        return [tree.root] if article.language in rules.root_languages else []
    scope: set[str] | None = None
    if rule.units:
        scope = set()
        for code in rule.units:
            scope.update(tree.subtree(code) if rule.subtree else [code])
    reached: list[str] = []
    for code in tree.subtree(tree.root):
        unit = tree.units[code]
        if code == tree.root:
            if rule.include_root:
                reached.append(code)
            continue
        if not unit.active:
            continue
        if "*" not in rule.kinds and unit.kind not in rule.kinds:
            continue
        if scope is not None and code not in scope:
            continue
        reached.append(code)
    return reached


def route(
    article: Article,
    tree: UnitTree,
    accounts: Iterable[ChannelAccount],
    rules: RoutingFile,
) -> list[Target]:
    """Units and accounts for a new article (directive: the cascade; article: its unit)."""
    by_unit: dict[str, list[ChannelAccount]] = {}
    for account in accounts:
        by_unit.setdefault(account.unit_code, []).append(account)
    if article.kind is ArticleKind.DIRECTIVE:
        codes = directive_units(article, tree, rules)
    else:
        codes = [article.unit_code] if article.unit_code in tree.units else []
    has_video = bool(article.video)
    return [
        Target(code, accounts_for(code, article.language, by_unit, has_video)) for code in codes
    ]


def nomination_target(from_unit: str, tree: UnitTree, rules: RoutingFile) -> str | None:
    """Where a unit's nomination goes: its parent, or the central portal."""
    if rules.nominate_to == "root" or from_unit not in tree.units:
        return tree.root if tree.root != from_unit else None
    return tree.units[from_unit].parent_code
