"""The built-in vision-language policy: a LLaVA-style model over the tiny Llama (DESIGN.md, "Models").

k1.5 is trained jointly on text and vision data (paper sections 1 and 2.3.5); this is the policy
that can see the images of ``k15/Vision-v0``. It is LLaVA-1.5's architecture (Liu et al., "Improved
Baselines with Visual Instruction Tuning", arXiv 2310.03744), scaled down:

    pixels (B, 3, S, S) -> CLIP ViT -> patch features (B, (S/p)^2, d_v)     CLS token dropped
                        -> projector MLP (linear, GELU, linear) -> (B, (S/p)^2, d)
                        -> written over the <image> placeholder embeddings of the prompt
                        -> the tiny Llama of ``presets.py`` -> logits (B, T, V)

Why LLaVA: it is the conventional vision tower + projector + language model, and the saved
directory is a stock ``LlavaForConditionalGeneration`` with a ``LlavaProcessor``, which
``AutoModelForImageTextToText`` / ``AutoProcessor`` load and vLLM serves through its Llava
support, so the tiny model and a real LLaVA checkpoint take the same path, as the text presets do.

The processor expands each ``<image>`` of a prompt into ``(S/p)^2`` placeholder tokens (one per
patch feature); the chat template renders an image content part (``{"type": "image"}`` or
OpenAI's ``{"type": "image_url"}``) as one ``<image>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    GenerationConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from k15ray.errors import UserError
from k15ray.models.llava_names import write_llava_names
from k15ray.models.loading import load_pretrained
from k15ray.models.presets import preset_config
from k15ray.models.tokenizer import (
    ASSISTANT_TOKEN,
    END_OF_TURN_TOKEN,
    SYSTEM_TOKEN,
    USER_TOKEN,
    build_tokenizer,
    save_tokenizer,
)
from k15ray.types import GenerationRequest

IMAGE_TOKEN = "<image>"
"""The image placeholder: one in a prompt per image; the processor repeats it once per patch."""

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
"""Either one holds the image processor's settings (transformers 5 reads the first, older readers
the second; ``create_vision_model`` writes both)."""


@dataclass(frozen=True)
class VisionPreset:
    """Architecture hyper-parameters of one vision-language preset."""

    text_preset: str
    """Name of the language model's preset in ``presets.PRESETS``."""
    image_size: int
    """Side S of the square image the vision tower sees, in pixels."""
    patch_size: int
    """Side p of one ViT patch, in pixels; the tower makes (S/p)^2 patch features."""
    hidden_size: int
    """Width d_v of the vision tower."""
    num_layers: int
    """Transformer layers of the vision tower."""
    num_heads: int
    """Attention heads of the vision tower."""
    intermediate_size: int
    """Hidden width of the vision tower's MLP."""
    initializer_factor: float = 1.0
    """CLIP's scale of the tower's initial weights. At CLIP's 1.0 a tower this small starts with
    features that hardly differ between images (their spread across images ~2% of their norm), and
    SFT never learned to count shapes from them; at 5.0 the spread is ~5% and it does."""

    @property
    def num_image_tokens(self) -> int:
        """Placeholder tokens one image takes in the prompt: (S/p)^2."""
        return (self.image_size // self.patch_size) ** 2


VISION_PRESETS: dict[str, VisionPreset] = {
    # 48 x 48 pixels in 8 x 8 patches: 6 x 6 = 36 image tokens, enough to count a few shapes.
    # Vision tower 114,944 parameters, projector 24,832, the tiny Llama 1,065,984 (docs/vision.md).
    "tiny-vl": VisionPreset(text_preset="tiny", image_size=48, patch_size=8, hidden_size=64, num_layers=2,
                            num_heads=4, intermediate_size=256, initializer_factor=5.0),
}

# The text template of tokenizer.py, with a message's content either a string (rendered exactly as
# the text policy renders it) or a list of parts: text parts as their text, image parts as <image>.
# The loop over message['content'] is what lets vLLM detect the OpenAI content-part format.
VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] in ['system', 'user', 'assistant'] %}"
    "{% if message['role'] == 'system' %}" + SYSTEM_TOKEN
    + "{% elif message['role'] == 'user' %}" + USER_TOKEN
    + "{% else %}" + ASSISTANT_TOKEN + "{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ['image', 'image_url'] %}" + IMAGE_TOKEN
    + "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}" + END_OF_TURN_TOKEN + "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT_TOKEN + "{% endif %}"
)


def build_vision_tokenizer() -> PreTrainedTokenizerFast:
    """The character tokenizer plus ``<image>`` as a special token (the last id), and the VL chat
    template."""
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"extra_special_tokens": [IMAGE_TOKEN]}, replace_extra_special_tokens=False)
    tokenizer.chat_template = VL_CHAT_TEMPLATE
    return tokenizer


def vision_language_config(preset: str, tokenizer: PreTrainedTokenizerFast) -> LlavaConfig:
    """The ``LlavaConfig`` of vision preset ``preset`` for ``tokenizer`` (which must hold ``<image>``)."""
    if preset not in VISION_PRESETS:
        valid = sorted(VISION_PRESETS)
        raise UserError(f"unknown vision-language preset {preset!r}; valid presets are {valid}")
    p = VISION_PRESETS[preset]
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert isinstance(image_token_id, int), "build_vision_tokenizer adds <image> as one token"
    text_config = preset_config(p.text_preset, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    tower = CLIPVisionConfig(
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_layers,
        num_attention_heads=p.num_heads,
        image_size=p.image_size,
        patch_size=p.patch_size,
        projection_dim=p.hidden_size,  # CLIP's contrastive head; LLaVA never builds it
        initializer_factor=p.initializer_factor,
    )
    return LlavaConfig(
        vision_config=tower,
        text_config=text_config,
        image_token_index=image_token_id,
        image_seq_length=p.num_image_tokens,
        # "default" drops CLIP's CLS token and keeps the (S/p)^2 patch features, as LLaVA-1.5 does.
        vision_feature_select_strategy="default",
        # LLaVA-1.5 reads the penultimate layer (-2) of a 24-layer tower; with only 2 layers that
        # would leave the last one unused, so the tiny tower's last layer feeds the projector.
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        tie_word_embeddings=text_config.tie_word_embeddings,
    )


def build_processor(preset: str, tokenizer: PreTrainedTokenizerFast) -> LlavaProcessor:
    """The ``LlavaProcessor`` of ``preset``: CLIP preprocessing at S x S and ``<image>`` expansion.

    Images are resized so the short side is S, then centre-cropped to S x S (CLIP's preprocessing,
    as LLaVA-1.5's processor does); ``k15/Vision-v0`` images are square (padded with white), so
    nothing of them is cropped."""
    p = VISION_PRESETS[preset]
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": p.image_size}, crop_size={"height": p.image_size, "width": p.image_size}
    )
    # (S/p)^2 patches + 1 CLS token - 1 dropped by "default" = (S/p)^2 placeholder tokens.
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=p.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=VL_CHAT_TEMPLATE,
    )


def create_vision_model(out_dir: str | Path, seed: int = 0, preset: str = "tiny-vl") -> Path:
    """Build vision preset ``preset`` with random weights and save it to ``out_dir`` in HF format.

    Writes ``config.json`` (``LlavaForConditionalGeneration``), ``model.safetensors``,
    ``generation_config.json``, ``processor_config.json`` and ``preprocessor_config.json`` (the
    image processor, for readers of either), ``tokenizer.json``, ``tokenizer_config.json`` and
    ``chat_template.jinja`` (the chat template is in ``tokenizer_config.json`` too). Returns ``out_dir``.
    """
    tokenizer = build_vision_tokenizer()
    config = vision_language_config(preset, tokenizer)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    write_llava_names(out)  # LLaVA's weight names, which vLLM reads (k15ray/models/llava_names.py)
    processor = build_processor(preset, tokenizer)
    processor.save_pretrained(str(out))
    processor.image_processor.save_pretrained(str(out))
    save_tokenizer(tokenizer, out)  # after the processor: the tokenizer_config.json that vLLM reads
    return out


def is_vision_config(config: PretrainedConfig) -> bool:
    """Whether ``config`` is a vision-language model's (it has a vision tower: ``vision_config``)."""
    return getattr(config, "vision_config", None) is not None


def is_vision_model_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a vision-language model (its ``config.json`` has a vision tower)."""
    return (Path(path) / "config.json").is_file() and is_vision_config(AutoConfig.from_pretrained(str(path)))


def check_request_images(config: PretrainedConfig, request: GenerationRequest) -> None:
    """A ``UserError`` when ``request``'s images cannot be shown to the policy of ``config``:
    images for a text-only policy, image tokens without images, or a count that does not match
    (``image_seq_length`` tokens per image)."""
    where = f"request {request.request_id!r}"
    check_image_input(config, len(request.images), where)
    image_token = getattr(config, "image_token_id", None)
    if image_token is None:
        return
    placeholders = request.token_ids.count(image_token)
    per_image = getattr(config, "image_seq_length", None) or placeholders // max(len(request.images), 1)
    if request.images and placeholders != per_image * len(request.images):
        raise UserError(
            f"{where}: {len(request.images)} image(s) but {placeholders} image tokens; "
            "encode the prompt with k15ray.prompting.encode_vision_prompt and the same images"
        )
    if placeholders and not request.images:
        raise UserError(
            f"{where}: {placeholders} image tokens but no images; send the images "
            "the prompt was encoded with (GenerationRequest.images)"
        )


def check_image_input(config: PretrainedConfig, num_images: int, where: str = "") -> None:
    """Raise a ``UserError`` when ``num_images`` > 0 images are given to a text-only policy.

    ``where`` names the request or prompt (e.g. ``prompt vision-counting-1a2b``) in the message."""
    if num_images > 0 and not is_vision_config(config):
        at = f"{where}: " if where else ""
        raise UserError(
            f"{at}{num_images} image(s) given to a text-only policy (model_type {config.model_type!r}, no "
            "vision tower); use a vision-language policy (k15ray.models.create_model('tiny-vl', DIR) or a "
            "LLaVA-style checkpoint), or send prompts without images"
        )


def check_vision_model_dir(path: str | Path, field: str = "") -> Path:
    """``path`` if it is a loadable vision-language directory, else a ``UserError`` naming ``field``,
    the path, what is wrong and the fix.

    On top of ``check_model_dir`` (directory, ``config.json``, weights, tokenizer): the config has
    a vision tower, and an image processor config is saved next to it."""
    from k15ray.models import check_model_dir  # here: k15ray.models imports this module

    p = check_model_dir(path, field)
    where = f"{field}: {p}" if field else str(p)
    config = AutoConfig.from_pretrained(str(p))
    if not is_vision_config(config):
        raise UserError(
            f"{where} holds a text-only model (model_type {config.model_type!r}, no vision_config), so "
            "it cannot see images; pass a vision-language directory "
            "(k15ray.models.create_model('tiny-vl', DIR) writes one)"
        )
    if not any((p / name).is_file() for name in PROCESSOR_FILES):
        raise UserError(
            f"{where}: no image processor ({' or '.join(PROCESSOR_FILES)}); save the processor there too "
            "(processor.save_pretrained)"
        )
    return p


def load_vision_policy(
    model_dir: str | Path,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[PreTrainedModel, Any]:
    """Load ``(model, processor)`` from a vision-language directory through ``Auto*`` classes.

    Raises ``UserError`` (a ``ValueError``) when ``model_dir`` is not such a directory
    (``check_vision_model_dir``)."""
    return load_pretrained(
        check_vision_model_dir(model_dir), AutoModelForImageTextToText, AutoProcessor, dtype, device
    )
