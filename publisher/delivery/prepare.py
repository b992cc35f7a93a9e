"""Building the exact payload of a delivery at send time: the channel adapts the article for
the unit, with the post's lead-in, so an edit made up to the last moment is what goes out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from channels.base import Channel, Template
from publisher.delivery.jobs import Job
from publisher.delivery.worker import PrepareError
from publisher.domain import Unit
from publisher.service import article_from_row
from publisher.store.delivery_sql import ARTICLE, POST


class AdaptingPreparer:
    """`prepare(job)`: the stored payload if there is one (a retry sends the same body),
    else `channel.adapt(article, unit, template-with-lead-in)`."""

    def __init__(
        self,
        engine: sa.Engine,
        channels: Mapping[str, Channel],
        units: Callable[[str], Unit | None],
        templates: Callable[[str, str], Template] | None = None,
    ) -> None:
        self.engine = engine
        self.channels = channels
        self.units = units
        self.templates = templates or (lambda unit_code, platform: Template())

    def __call__(self, job: Job) -> Mapping[str, Any]:
        if job.payload is not None:
            return job.payload
        channel = self.channels.get(job.platform)
        unit = self.units(job.unit_code)
        if channel is None or unit is None:
            raise PrepareError(f"no channel or unit for {job.platform}/{job.unit_code}")
        with self.engine.connect() as conn:
            article_row = conn.execute(
                sa.select(ARTICLE).where(ARTICLE.c.id == job.article_id)
            ).first()
            lead_in = conn.execute(
                sa.select(POST.c.lead_in).where(POST.c.id == job.post_id)
            ).scalar_one_or_none()
        if article_row is None:
            raise PrepareError(f"article {job.article_id} is gone")
        article = article_from_row(article_row._mapping)
        base = self.templates(job.unit_code, job.platform)
        template = Template(
            source_line=base.source_line,
            hashtag_keywords=base.hashtag_keywords,
            lead_in=lead_in or base.lead_in,
            include_link=base.include_link,
            include_summary=base.include_summary,
        )
        adapted = channel.adapt(article, unit, template)
        if not adapted.ok or adapted.payload is None:
            problems = "; ".join(f"{p.code}: {p.message}" for p in adapted.problems)
            raise PrepareError(f"{channel.display_name} cannot take this article: {problems}")
        return adapted.payload
