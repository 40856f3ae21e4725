"""Pydantic schemas of the HTTP edge: the OpenAI-compatible policy API, rewards and the sandbox.

Requests are validated here (wrong types and missing fields give a 400 with the field's name);
limits that depend on the deployment's configuration (``max_tokens``, ``n``, item counts) are
checked by the deployments, which know them. Inside Ray, the plain dataclasses of
``k15ray.types`` travel instead; these models exist only at the edge.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from k15ray.types import CodeTest, RewardResult

# ---------------------------------------------------------------------------------- OpenAI (policy)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _Sampling(BaseModel):
    """Fields shared by ``/v1/completions`` and ``/v1/chat/completions``.

    Unknown fields (``presence_penalty``, ``user``, ...) are accepted and ignored, as OpenAI-compatible
    servers do, so that stock clients work."""

    model_config = ConfigDict(extra="ignore")

    model: str
    n: int = Field(1, ge=1, description="choices per prompt")
    max_tokens: int | None = Field(None, ge=1, description="new tokens per choice")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    stop: str | list[str] | None = Field(None, description="up to 4 stop strings")
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return v

    def stop_strings(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class CompletionRequest(_Sampling):
    """``POST /v1/completions``: one prompt (text or token ids) or a list of text prompts."""

    prompt: str | list[str] | list[int]
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, v: str | list[str] | list[int]) -> str | list[str] | list[int]:
        if isinstance(v, list) and not v:
            raise ValueError("prompt must not be an empty list")
        return v


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI's "detail" is accepted and ignored

    url: str = Field(description="a base64 data URL: data:image/png;base64,...")


class ContentPart(BaseModel):
    """One part of a message's content: ``{"type": "text", "text": ...}`` or ``{"type":
    "image_url", "image_url": {"url": "data:image/png;base64,..."}}``. Any ``type`` parses here;
    ``k15ray.serve.content_parts`` answers an unknown one with a message that lists the known ones."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    image_url: ImageUrl | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


class ChatCompletionRequest(_Sampling):
    """``POST /v1/chat/completions``: a conversation; the tokenizer's chat template renders it
    (the processor's, with images, for a vision-language policy)."""

    messages: list[ChatMessage] = Field(min_length=1)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class CompletionResponse(BaseModel):
    """A whole completion, or (``usage`` None) one chunk of a streamed one."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] | None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "k15ray"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope, used by every k15ray endpoint: ``{"error": {...}}``."""

    error: ErrorBody


# -------------------------------------------------------------------------------------- rewards


class RewardOut(BaseModel):
    """A ``k15ray.types.RewardResult`` on the wire."""

    score: float
    correct: bool
    status: str
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, result: RewardResult) -> RewardOut:
        return cls(
            score=result.score, correct=result.correct, status=result.status,
            details=_jsonable(dict(result.details)),
        )


class RewardBatchResponse(BaseModel):
    results: list[RewardOut]


class MathItem(BaseModel):
    """One response to score against a reference answer with ``verify_math``."""

    model_config = ConfigDict(extra="forbid")

    response: str
    reference: str
    prompt_id: str = "served"


class CodeTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stdin: str = ""
    expected_stdout: str

    def to_type(self) -> CodeTest:
        return CodeTest(stdin=self.stdin, expected_stdout=self.expected_stdout)


class CodeItem(BaseModel):
    """One response (a program, possibly in a Markdown fence) to run against stdin/stdout tests."""

    model_config = ConfigDict(extra="forbid")

    response: str
    tests: list[CodeTestIn] = Field(min_length=1)
    prompt_id: str = "served"


class _OneOrMany(BaseModel):
    """A single item's fields at the top level, or a batch under ``items``: exactly one of them."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object, sent as content-type: application/json")
        if "items" in data:
            if len(data) != 1:
                raise ValueError("give either `items` (a batch) or one item's fields, not both")
            return data
        return {"single": data}


class MathRewardRequest(_OneOrMany):
    single: MathItem | None = None
    items: list[MathItem] | None = Field(None, min_length=1)

    def all_items(self) -> list[MathItem]:
        return self.items if self.items is not None else [self.single] if self.single else []


class CodeRewardRequest(_OneOrMany):
    single: CodeItem | None = None
    items: list[CodeItem] | None = Field(None, min_length=1)

    def all_items(self) -> list[CodeItem]:
        return self.items if self.items is not None else [self.single] if self.single else []


# -------------------------------------------------------------------------------------- sandbox


class SandboxRunRequest(BaseModel):
    """``POST /v1/sandbox/run``: run a program (Python or C++) on ``stdin`` in the sandbox."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    stdin: str = ""
    timeout_s: float = Field(5.0, gt=0.0)
    memory_mb: int = Field(512, ge=16)
    language: Literal["python", "cpp"] = "python"


class SandboxRunResponse(BaseModel):
    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    wall_s: float


def _jsonable(value: Any) -> Any:
    """Details may hold tuples or dataclasses; give JSON a plain form (repr as the last resort)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
