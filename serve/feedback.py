"""Serving logic of `POST /v1/feedback`, and the recorder that stores every answer it can refer to.

With `serve --feedback-db PATH` each finished chat completion is stored (question, messages, the passages
quoted, the index version, the model and run/system, the answer) under its `id` before the client sees
the end of it; a rating names that id. Both writes commit (fsynced, ragtune/feedback.py) before the
request is answered, so a 2xx means the row survives a kill -9. The database calls block, so they run on
a worker thread; one lock in the store serialises them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from ragtune.feedback import AnswerRecord, FeedbackStore
from serve.errors import APIError
from serve.schemas import FeedbackRequest, FeedbackResponse, ServedSystem

logger = logging.getLogger(__name__)


class AnswerRecorder:
    """Stores served answers and the ratings of them in a FeedbackStore."""

    def __init__(self, store: FeedbackStore):
        self.store = store

    async def record(
        self, turn, response_id: str, model_id: str, answer: str, served: ServedSystem | None
    ) -> None:
        """Store one finished answer (`turn`: serve.chat.Turn). A failed write is logged, not raised: the
        reader still gets the answer, and a rating of it later is a 404 that says so."""
        rec = AnswerRecord(
            id=response_id,
            model=model_id,
            question=turn.question,
            answer=answer,
            request_messages=turn.request_messages,
            prompt_messages=list(turn.prepared.messages),
            passages=[
                {"chunk_id": p.chunk_id, "doc_id": p.doc_id, "title": p.title, "text": p.text}
                for p in turn.passages
            ],
            index_version=turn.index_version,
            run=served.run if served else None,
            system=served.system if served else None,
        )
        try:
            await asyncio.to_thread(self.store.add_answer, rec)
        except sqlite3.Error as e:
            logger.error("answer %s not stored in the feedback database: %s", response_id, e)

    async def rate(self, req: FeedbackRequest) -> FeedbackResponse:
        """Store one rating; 404 naming `response_id` when no stored answer has that id."""
        row_id = await asyncio.to_thread(
            self.store.add_feedback, req.response_id, req.rating, req.correction, req.note
        )
        if row_id is None:
            raise APIError(
                404,
                f"`response_id` {req.response_id!r} names no answer this server stored; send the `id` of a "
                "chat completion answered while --feedback-db was set",
                param="response_id",
                code="unknown_response_id",
            )
        return FeedbackResponse(id=row_id, response_id=req.response_id, rating=req.rating)

    def close(self) -> None:
        self.store.close()
