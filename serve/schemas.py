"""Request and response schemas of the HTTP API (pydantic), OpenAI's shape plus ragtune's extensions.

Extension fields of a chat request (send them with the openai client's `extra_body`):
  `retrieval` (bool, default true): search the index for the last user message and quote the passages;
  `top_k` (int): passages to retrieve (default: the server's --top-k);
  `raw_prompt` (bool, default false): send the messages to the model as they are (no RAG prompt), for a
      gateway in front of this server that has already built the prompt;
  `retrieval_mode` ("dense", "bm25" or "hybrid"): how to search (default: the server's --retrieval).
Unknown extra fields are ignored (OpenAI clients send many); known fields of the wrong type are a 400.
OpenAI fields this server does not implement (`tools`, `tool_choice`, `functions`, `function_call`,
`response_format` other than text, `logprobs`, `top_logprobs`, `n` > 1, and the sampling and output
fields `presence_penalty`, `frequency_penalty`, `logit_bias`, `audio`, `modalities` other than text,
`web_search_options`, `reasoning_effort`, `verbosity`) are a 400 that names the field, never a silently
different answer. Fields that cannot change the answer (`metadata`, `store`, `service_tier`,
`parallel_tool_calls`, `prediction`, `prompt_cache_key`, `safety_identifier`) are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ragtune.feedback import MAX_CORRECTION_CHARS, MAX_NOTE_CHARS

MAX_STOP = 4
_NOT = "Not supported by this server (a 400 that names the field)"


def _valid_unicode(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"text holds a lone surrogate ({s[e.start]!r} at {e.start}), which is not valid Unicode; "
            "send UTF-8 text"
        ) from None
    return s


Text = Annotated[str, AfterValidator(_valid_unicode)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"] = "text"
    text: Text = Field(max_length=1_000_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = Field(None, description="Text, or a list of text parts.")
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(max_length=512, description="The served model id (see GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1024)
    max_tokens: int | None = Field(
        None, ge=1, description="Tokens to generate at most (capped by the server)."
    )
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens.")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 = greedy.")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: Text | list[Text] | None = Field(None, description=f"Up to {MAX_STOP} stop sequences.")
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=512)
    # ragtune extensions
    retrieval: bool | None = Field(
        None,
        description="Retrieve passages for the last user message (ragtune extension; default: the "
        "server's, true unless it serves a closed-book system).",
    )
    top_k: int | None = Field(None, ge=0, le=100, description="Passages to retrieve (ragtune extension).")
    retrieval_mode: Literal["dense", "bm25", "hybrid"] | None = Field(
        None, description="dense, bm25 or hybrid search (ragtune extension; default: the server's)."
    )
    raw_prompt: bool = Field(
        False, description="Send the messages verbatim, no RAG prompt (ragtune extension)."
    )
    # OpenAI fields this server does not implement: declared so that `unsupported_field` can refuse them.
    n: int | None = Field(None, ge=1, description=f"Choices per request: only 1. {_NOT} above 1.")
    tools: list[Any] | None = Field(None, description=f"Tool calling. {_NOT}.")
    tool_choice: str | dict[str, Any] | None = Field(None, description=f'{_NOT} other than "none".')
    functions: list[Any] | None = Field(None, description=f"Old name of tools. {_NOT}.")
    function_call: str | dict[str, Any] | None = Field(None, description=f'{_NOT} other than "none".')
    response_format: dict[str, Any] | None = Field(
        None, description=f'Only {{"type": "text"}}; JSON mode and JSON schema: {_NOT}.'
    )
    logprobs: bool | None = Field(None, description=f"{_NOT} when true.")
    top_logprobs: int | None = Field(None, description=f"{_NOT} above 0.")
    presence_penalty: float | None = Field(None, description=f"{_NOT} other than 0.")
    frequency_penalty: float | None = Field(None, description=f"{_NOT} other than 0.")
    logit_bias: dict[str, Any] | None = Field(None, description=f"{_NOT} when not empty.")
    audio: dict[str, Any] | None = Field(None, description=f"Audio output. {_NOT}.")
    modalities: list[str] | None = Field(None, description=f'Only ["text"]; audio: {_NOT}.')
    web_search_options: dict[str, Any] | None = Field(None, description=f"Web search. {_NOT}.")
    reasoning_effort: str | None = Field(None, description=f"Reasoning models only. {_NOT}.")
    verbosity: str | None = Field(None, description=f"{_NOT}; ask for the length in the messages.")

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        stops = [v] if isinstance(v, str) else v
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed, got {len(stops)}")
        if any(len(s) > 256 for s in stops):
            raise ValueError("each stop sequence must be at most 256 characters")
        return [s for s in stops if s]

    def unsupported_field(self) -> tuple[str, str] | None:
        """The first field set to something this server cannot honour, with what to send instead."""
        checks = [
            ("n", self.n in (None, 1), "only n=1 is; send one request per answer"),
            ("tools", not self.tools, "tool calling is not implemented; leave `tools` out"),
            ("tool_choice", self.tool_choice in (None, "none"), 'leave it out or send "none"'),
            ("functions", not self.functions, "function calling is not implemented; leave `functions` out"),
            ("function_call", self.function_call in (None, "none"), 'leave it out or send "none"'),
            (
                "response_format",
                self.response_format in (None, {"type": "text"}),
                'only {"type": "text"} is; ask for the format in the messages instead',
            ),
            ("logprobs", not self.logprobs, "leave it out or send false"),
            ("top_logprobs", not self.top_logprobs, "leave it out or send 0"),
            (
                "presence_penalty",
                not self.presence_penalty,
                "repetition penalties are not implemented; send 0",
            ),
            (
                "frequency_penalty",
                not self.frequency_penalty,
                "repetition penalties are not implemented; send 0",
            ),
            ("logit_bias", not self.logit_bias, "token biases are not implemented; leave it out"),
            ("audio", self.audio is None, "audio output is not implemented; leave `audio` out"),
            ("modalities", self.modalities in (None, ["text"]), 'only ["text"] is; leave it out'),
            (
                "web_search_options",
                self.web_search_options is None,
                "this server searches its own index only",
            ),
            (
                "reasoning_effort",
                self.reasoning_effort is None,
                "the served model does not reason; leave it out",
            ),
            ("verbosity", self.verbosity is None, "ask for the answer's length in the messages instead"),
        ]
        return next(((name, fix) for name, ok, fix in checks if not ok), None)


class Source(BaseModel):
    chunk_id: str
    doc_id: str
    title: str = ""
    source: str = ""
    score: float
    snippet: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


class ServedSystem(BaseModel):
    """Which run's verdict chose the served system (`ragtune serve --from RUN`)."""

    run: str
    system: str


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[Source] = Field(
        default_factory=list, description="Passages quoted in the prompt (ragtune)."
    )
    index_version: str | None = Field(None, description="The index version the sources come from (ragtune).")
    ragtune_system: ServedSystem | None = Field(
        None, description="The run and system answering, when serving a run's winner (ragtune)."
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragtune"
    max_model_len: int | None = None
    parent: str | None = None  # a LoRA adapter's base model (as vLLM lists its --lora-modules)
    ragtune_system: ServedSystem | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query: Text = Field(min_length=1, max_length=100_000)
    top_k: int | None = Field(None, ge=1, le=100)
    retrieval_mode: Literal["dense", "bm25", "hybrid"] | None = None


class RetrieveResponse(BaseModel):
    object: Literal["list"] = "list"
    index_version: str
    data: list[Source]


class IndexInfo(BaseModel):
    version: str
    dir: str
    counts: dict[str, Any]
    encoder: dict[str, Any]
    created: str | None = None
    parent: str | None = None
    last_refused: dict[str, Any] | None = Field(None, description="The last version refused, and why.")


class ReloadResponse(BaseModel):
    changed: bool
    version: str
    previous: str | None = None
    error: str | None = None


class FeedbackRequest(BaseModel):
    """A rating of one served answer (`POST /v1/feedback`), kept with the answer it rates."""

    model_config = ConfigDict(extra="forbid")
    response_id: str = Field(
        min_length=1, max_length=200, description="The `id` of the chat completion being rated."
    )
    rating: Literal["up", "down"] = Field(description="up: a good answer; down: a wrong or unhelpful one.")
    correction: Text | None = Field(
        None,
        max_length=MAX_CORRECTION_CHARS,
        description=f"The right answer, in the reader's words (up to {MAX_CORRECTION_CHARS} characters).",
    )
    note: Text | None = Field(
        None, max_length=MAX_NOTE_CHARS, description=f"Anything else (up to {MAX_NOTE_CHARS} characters)."
    )


class FeedbackResponse(BaseModel):
    object: Literal["feedback"] = "feedback"
    id: int = Field(description="The stored row's id.")
    response_id: str
    rating: str
    stored: bool = True


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
