"""Bài / Post: the article, and beside it how it will look on each channel."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from publisher.domain import ArticleKind
from publisher.views import PostDetail
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.ports import ChannelPreview
from tui.screens.base import DataScreen
from tui.screens.prompt import PromptDialog, required
from tui.screens.queue import check_time
from tui.widgets.channel_preview import ChannelPreviewView

BODY_PREVIEW_CHARS = 3000


class PostScreen(DataScreen):
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("escape", "back", "Back"),
        Key("a", "approve", "Approve"),
        Key("r", "reject", "Reject"),
        Key("e", "edit", "Edit lead-in"),
        Key("s", "reschedule", "Reschedule"),
        Key("t", "recall", "Recall"),
        Key("full_stop", "album(1)", "Next photo", show=False),
        Key("comma", "album(-1)", "Previous photo", show=False),
    )

    def __init__(self, post_id: int) -> None:
        super().__init__()
        self.post_id = post_id
        self.detail: PostDetail | None = None
        self.previews: list[ChannelPreview] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="post-body"):
            with VerticalScroll(id="article-pane"):
                yield Static(_("Loading…"), id="article")
            with VerticalScroll(id="channels-pane"):
                yield TabbedContent(id="channel-tabs")
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user = self.publisher.user

        def read() -> tuple[PostDetail | None, list[ChannelPreview]]:
            detail = self.backend.post(user, self.post_id)
            return detail, (self.backend.previews(detail) if detail else [])

        detail, previews = await self.fetch(read)
        if detail is None:
            self.publisher.refuse(_("Post {id} is not in your units.").format(id=self.post_id))
            self.dismiss()
            return
        changed = self.detail != detail or self.previews != previews
        self.detail, self.previews = detail, previews
        if changed:
            await self.show()

    async def show(self) -> None:
        detail = self.detail
        assert detail is not None
        article, post = detail.article, detail.post
        locked = article.kind is ArticleKind.DIRECTIVE
        meta = Text.assemble(
            (f"#{post.id} · ", "dim"),
            (formatting.kind(article.kind.value), "bold"),
            " · ",
            f"{detail.unit.code} {detail.unit.name}",
            " · ",
            formatting.post_state(post.state.value),
            "\n",
            _("Published: "),
            formatting.when(article.published_at),
            "  ",
            _("Scheduled: "),
            formatting.when(post.scheduled_at),
            "\n",
            _("Source: "),
            article.source or "—",
            " · ",
            article.url,
        )
        lead = Text.assemble((_("Lead-in (editable): "), "bold cyan"), post.lead_in or _("(none)"))
        lock_note = Text(
            _("🔒 Official text of a directive: locked. Only the lead-in can change.")
            if locked
            else _("The unit's own article."),
            style="yellow" if locked else "dim",
        )
        recall = self.recall_lines(detail)
        notes = self.receipt_lines(detail)
        body = article.body_text or article.summary
        if len(body) > BODY_PREVIEW_CHARS:
            body = body[:BODY_PREVIEW_CHARS] + "…"
        self.query_one("#article", Static).update(
            Group(
                Text(article.title, style="bold"),
                meta,
                *notes,
                *recall,
                Text(""),
                lead,
                lock_note,
                Text(""),
                Text(article.summary, style="italic") if article.summary else Text(""),
                Text(body),
            )
        )
        tabs = self.query_one("#channel-tabs", TabbedContent)
        await tabs.clear_panes()
        states = {d.account_id: d.state for d in detail.deliveries}
        for index, preview in enumerate(self.previews):
            label = formatting.platform(preview.platform)
            if any(p.severity.value == "error" for p in preview.problems):
                label += " ✗"
            elif preview.problems:
                label += " !"
            await tabs.add_pane(
                TabPane(
                    label,
                    ChannelPreviewView(preview, states.get(preview.account_id, "")),
                    id=f"pane-{index}",
                )
            )
        if not self.previews:
            await tabs.add_pane(
                TabPane(_("No channel"), Static(_("This unit has no channel account.")))
            )

    @staticmethod
    def receipt_lines(detail: PostDetail) -> list[Text]:
        """What each channel said beside a send that went out (a Zalo broadcast's message id,
        its monthly quota used up): the channel's own sentence, Vietnamese first."""
        sent = [d for d in detail.deliveries if d.receipt_notes]
        if not sent:
            return []
        lines = [Text(""), Text(_("Channel notes on what was sent"), "bold")]
        for d in sent:
            for note in d.receipt_notes:
                lines.append(
                    Text.assemble(
                        f"  {formatting.platform(d.platform)} · {d.account_id}: ",
                        ("⚠ " if note.is_warning else "· ", "yellow" if note.is_warning else "dim"),
                        note.message,
                    )
                )
        return lines

    @staticmethod
    def recall_lines(detail: PostDetail) -> list[Text]:
        """The withdrawal of each channel of a recalled post: where it stands, and what a
        person must remove by hand (with the link)."""
        if not detail.withdrawals:
            return []
        lines = [Text(""), Text(_("Recall: taking the post back from every channel"), "bold red")]
        for w in detail.withdrawals:
            style = {
                "withdrawn": "green",
                "needs_manual_removal": "bold magenta",
                "failed": "bold red",
                "not_sent": "dim",
            }.get(w.state, "yellow")
            line = Text.assemble(
                f"  {formatting.platform(w.platform)} · {w.account_id}: ",
                (formatting.withdrawal_state(w.state), style),
            )
            if w.state == "withdrawn" and w.withdrawn_at is not None:
                line.append(f" {formatting.when(w.withdrawn_at)}", "dim")
            if w.state in ("needs_manual_removal", "failed"):
                # a link, or why there is none (Viber: the message token)
                line.append(f" {w.target}", "underline" if w.url and w.target == w.url else "")
            lines.append(line)
        return lines

    def action_album(self, by: int) -> None:
        """Step through the album of the channel tab on screen (a Telegram media group)."""
        tabs = self.query_one("#channel-tabs", TabbedContent)
        if not tabs.active:
            return
        for view in tabs.get_pane(tabs.active).query(ChannelPreviewView):
            if view.step(by):
                return

    def action_recall(self) -> None:
        """Thu hồi: a reason (required), a correction notice (optional), then the post's
        number typed back to confirm; the core checks who may."""
        user = self.publisher.user
        post_id = self.post_id

        def confirmed(reason: str, notice: str, typed: str | None) -> None:
            if typed is None:
                return
            self.decide(
                _("Recall of post {id} requested.").format(id=post_id),
                partial(self.backend.recall, user, post_id, reason, notice),
            )

        def noticed(reason: str, notice: str | None) -> None:
            if notice is None:
                return
            self.app.push_screen(
                PromptDialog(
                    _("Recall post {id} from every channel? Type {id} to confirm.").format(
                        id=post_id
                    ),
                    hint=_("Posts not sent yet are stopped; sent ones are taken back."),
                    check=partial(_confirm_number, post_id),
                ),
                partial(confirmed, reason, notice),
            )

        def reasoned(reason: str | None) -> None:
            if not reason:
                return
            self.app.push_screen(
                PromptDialog(
                    _("Correction notice (optional)"),
                    hint=_("Written in place of the post where a platform can only edit it."),
                ),
                partial(noticed, reason),
            )

        self.app.push_screen(
            PromptDialog(_("Recall post {id}: why?").format(id=post_id), check=required),
            reasoned,
        )

    def action_back(self) -> None:
        self.dismiss()

    def action_approve(self) -> None:
        self.decide(
            _("Approved post {id}.").format(id=self.post_id),
            partial(self.backend.approve, self.publisher.user, [self.post_id]),
        )

    def action_reject(self) -> None:
        user = self.publisher.user

        def rejected(reason: str | None) -> None:
            if reason:
                self.decide(
                    _("Rejected post {id}.").format(id=self.post_id),
                    partial(self.backend.reject, user, self.post_id, reason),
                )

        self.app.push_screen(
            PromptDialog(_("Reject post {id}: why?").format(id=self.post_id), check=required),
            rejected,
        )

    def action_edit(self) -> None:
        user = self.publisher.user
        current = self.detail.post.lead_in if self.detail else ""

        def edited(text: str | None) -> None:
            if text is not None:
                self.decide(
                    _("Lead-in saved for post {id}.").format(id=self.post_id),
                    partial(self.backend.edit_lead_in, user, self.post_id, text),
                )

        self.app.push_screen(
            PromptDialog(
                _("Lead-in of post {id}").format(id=self.post_id),
                value=current,
                hint=_("Only the unit's opening line can change; a directive's text stays locked."),
            ),
            edited,
        )

    def action_reschedule(self) -> None:
        from publisher.plan_import import parse_local_time

        user = self.publisher.user
        start = self.detail.post.scheduled_at if self.detail else None

        def chosen(text: str | None) -> None:
            if text:
                when = parse_local_time(text)
                self.decide(
                    _("Post {id} moved to {when}.").format(
                        id=self.post_id, when=formatting.when(when)
                    ),
                    partial(self.backend.reschedule, user, self.post_id, when),
                )

        self.app.push_screen(
            PromptDialog(
                _("New time for post {id}").format(id=self.post_id),
                value=formatting.when(start) if start else "",
                hint=_("dd/mm/yyyy HH:MM, 24-hour, Vietnam time"),
                check=check_time,
            ),
            chosen,
        )


def _confirm_number(post_id: int, text: str) -> str | None:
    return None if text.strip() == str(post_id) else _("Type the post number to confirm.")
