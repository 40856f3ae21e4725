"""OpenAI content parts of chat messages: text parts and inline images, read into what a policy takes.

A chat message's ``content`` is a string, or a list of parts (OpenAI's format)::

    {"type": "text", "text": "How many circles?"}
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0..."}}

``read_chat(messages, ...)`` turns such messages into a ``ChatPrompt``: messages for a chat
template (a message whose parts are all text becomes one string, the parts joined as the
vision-language template joins them; each image part becomes ``{"type": "image"}``, one
placeholder) and the images as ``(H, W, 3)`` uint8 RGB arrays in the order of their placeholders,
which is ``GenerationRequest.images``' order. The server fetches nothing: an image comes inline as
a base64 ``data:`` URL. Bad input raises ``ValueError`` whose message names the part
(``messages[i].content[j]``) and the fix; no Ray in here.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PART_TYPES = ("text", "image_url")
"""Content part types the policy endpoint reads."""

MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image (width x height) decoded; the processor shrinks every image to its tower's size
anyway (48 x 48 for ``tiny-vl``), and a small PNG can declare a huge canvas."""


@dataclass(frozen=True)
class ChatPrompt:
    """Chat messages ready for a chat template, and the images their placeholders stand for."""

    messages: list[dict[str, Any]]
    images: tuple[np.ndarray, ...]
    """``(H, W, 3)`` uint8 RGB arrays, in the order of the ``{"type": "image"}`` parts."""


def _where(i: int, j: int) -> str:
    return f"messages[{i}].content[{j}]"


def decode_data_url(url: str, where: str) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB pixels of a base64 ``data:image/...`` URL (PNG, JPEG or any
    format PIL reads); a ``ValueError`` naming ``where`` and the fix otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not url.startswith("data:"):
        shown = url if len(url) <= 60 else url[:57] + "..."
        raise ValueError(
            f"{where}.image_url.url is {shown!r}, not a data URL; the server fetches nothing: "
            "send the image inline as a base64 data URL (data:image/png;base64,...)"
        )
    header, comma, payload = url.partition(",")
    media_type, *params = header[len("data:"):].split(";")
    if not comma or "base64" not in params or not media_type.startswith("image/"):
        raise ValueError(
            f"{where}.image_url.url starts {header[:60]!r}; write it as data:image/png;base64,<base64 "
            "of the file> (or image/jpeg)"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError(
            f"{where}.image_url.url: the data after the comma is not valid base64 ({err}); "
            "encode the image file's bytes with standard base64"
        ) from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{where}: the image is {width} x {height} pixels, over the limit of "
                    f"{MAX_IMAGE_PIXELS} pixels; downscale it before sending"
                )
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"{where}.image_url.url: the {len(data)} decoded bytes are not an image PIL can read "
            f"({type(err).__name__}); send a PNG or JPEG file's bytes"
        ) from None
    return pixels


def _image_url(part: Mapping[str, Any], where: str) -> str:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else None
    if not isinstance(url, str):
        raise ValueError(
            f"{where} of type 'image_url' has no image_url.url string; write "
            "{'type': 'image_url', 'image_url': {'url': 'data:image/png;base64,...'}}"
        )
    return url


def image_part_locations(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the image parts are (``messages[i].content[j]``); a ``ValueError`` for a part whose
    type is not one of ``PART_TYPES``, or a text part without text."""
    found: list[str] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            continue
        for j, part in enumerate(content or ()):
            kind = part.get("type")
            if kind not in PART_TYPES:
                raise ValueError(
                    f"{_where(i, j)} has type {kind!r}; this server reads content parts of type "
                    f"{' and '.join(repr(t) for t in PART_TYPES)} only"
                )
            if kind == "text" and not isinstance(part.get("text"), str):
                raise ValueError(
                    f"{_where(i, j)} of type 'text' has no 'text' string; write "
                    "{'type': 'text', 'text': '...'}"
                )
            if kind == "image_url":
                found.append(_where(i, j))
    return found


def read_chat(messages: Sequence[Mapping[str, Any]]) -> ChatPrompt:
    """``messages`` (plain string content, or lists of content parts) as a ``ChatPrompt``.

    Messages with string content pass unchanged, so a text-only conversation renders exactly as
    before content parts existed."""
    image_part_locations(messages)  # every part is known before any image is decoded
    out: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            out.append(dict(message))
            continue
        parts: list[dict[str, Any]] = []
        for j, part in enumerate(content or ()):
            if part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                images.append(decode_data_url(_image_url(part, _where(i, j)), _where(i, j)))
                parts.append({"type": "image"})
        if all(p["type"] == "text" for p in parts):  # text only: one string, as a text template wants
            out.append({**message, "content": "".join(p["text"] for p in parts)})
        else:
            out.append({**message, "content": parts})
    return ChatPrompt(messages=out, images=tuple(images))
