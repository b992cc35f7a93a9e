from __future__ import annotations

from datetime import UTC, datetime

from publisher.domain import Article, ArticleKind, ChannelAccount, Platform, Unit
from publisher.routing import UnitTree, nomination_target, route
from publisher.settings.workflow import DirectiveRule, RoutingFile

UNITS = [
    Unit("CP", "Central", "central"),
    Unit("BYT", "Health", "ministry", "CP"),
    Unit("01", "Ha Noi", "province", "CP"),
    Unit("00004", "Ba Dinh", "commune", "01"),
    Unit("79", "HCMC", "province", "CP"),
    Unit("26734", "Sai Gon", "commune", "79"),
]
TREE = UnitTree(UNITS)
ACCOUNTS = [ChannelAccount(f"{u.code}.fb", u.code, Platform.FACEBOOK, "x") for u in UNITS] + [
    ChannelAccount("CP.fb.en", "CP", Platform.FACEBOOK, "y", language="en"),
    ChannelAccount("CP.fb.zh", "CP", Platform.FACEBOOK, "z", language="zh"),
]


def article(kind=ArticleKind.DIRECTIVE, language="vi", category=None, unit="CP"):
    return Article(
        "g",
        "https://x",
        "T",
        datetime(2026, 1, 1, tzinfo=UTC),
        kind=kind,
        language=language,
        category=category,
        unit_code=unit,
        id=1,
    )


def units_of(targets):
    return [t.unit_code for t in targets]


def test_a_directive_cascades_to_the_whole_tree_by_default():
    targets = route(article(), TREE, ACCOUNTS, RoutingFile())
    assert sorted(units_of(targets)) == sorted(u.code for u in UNITS)
    cp = next(t for t in targets if t.unit_code == "CP")
    assert [a.id for a in cp.accounts] == ["CP.fb"]  # not the en/zh-bound ones


def test_levels_units_and_categories_filter_the_cascade():
    rules = RoutingFile(
        directive=[
            DirectiveRule(category="health", kinds=["ministry"], include_root=False),
            DirectiveRule(kinds=["province", "commune"], units=["01"]),
        ]
    )
    assert units_of(route(article(category="health"), TREE, ACCOUNTS, rules)) == ["BYT"]
    assert sorted(units_of(route(article(), TREE, ACCOUNTS, rules))) == ["00004", "01", "CP"]


def test_language_bound_accounts_get_only_their_language_and_other_languages_stay_at_root():
    targets = route(article(language="en"), TREE, ACCOUNTS, RoutingFile())
    assert units_of(targets) == ["CP"]
    assert sorted(a.id for a in targets[0].accounts) == ["CP.fb", "CP.fb.en"]


def test_a_unit_article_goes_to_its_own_channels_and_nominates_upward():
    targets = route(article(ArticleKind.ARTICLE, unit="00004"), TREE, ACCOUNTS, RoutingFile())
    assert units_of(targets) == ["00004"]
    assert nomination_target("00004", TREE, RoutingFile()) == "01"
    assert nomination_target("00004", TREE, RoutingFile(nominate_to="root")) == "CP"
    assert TREE.ancestors("00004") == ["01", "CP"]


def test_video_only_platforms_get_nothing_without_a_video() -> None:
    from publisher import routing as _routing
    from publisher.domain import ChannelAccount as _Account
    from publisher.domain import Platform as _Platform

    accounts = {
        "01": [
            _Account("01.facebook", "01", _Platform.FACEBOOK, "1"),
            _Account("01.youtube", "01", _Platform.YOUTUBE, "UC1"),
        ]
    }
    without = _routing.accounts_for("01", "vi", accounts, has_video=False)
    assert [a.id for a in without] == ["01.facebook"]
    with_video = _routing.accounts_for("01", "vi", accounts, has_video=True)
    assert [a.id for a in with_video] == ["01.facebook", "01.youtube"]
