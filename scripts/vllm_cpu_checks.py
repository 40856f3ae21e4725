"""What of vLLM's vision path can be checked without a GPU, on tiny-vl (docs/vision.md).

vLLM's input processing and its model classes are Python; only the engine's kernels need a GPU (or
a CPU build of vLLM). Given vLLM's Python package, this script checks, on the CPU:

0. start: vLLM's ``InputProcessor`` (the engine's multi-modal profiling) starts with
   ``processor_cache_kwargs`` (and, with transformers 5.23 or later, fails without them);
1. prompts: vLLM's ``InputPreprocessor`` expands ``EnginePrompts``' prompt (one ``<image>`` per
   image) into exactly the request's ids, for one and two images, with a partial rollout's earlier
   tokens too; the expanded prompt comes back 35 tokens longer per image (the H100 bug);
2. weights: vLLM's ``LlavaForConditionalGeneration`` built on the CPU loads the learner's in-memory
   state dict through ``llava_weights`` (what ``VLLMBackend.update_weights`` sends) into exactly the
   parameters that loading the saved checkpoint gives;
3. features: its tower and projector give transformers' image features for the same pixels.

    python scripts/vllm_cpu_checks.py --vllm-path DIR [--deps DIR]

``DIR`` holds the ``vllm`` package (e.g. the GPU bundle's ``site-packages``, or an unzipped
``vllm-0.26.0`` wheel); ``--deps`` a ``pip install --no-deps --target`` folder with what vLLM imports
and this environment lacks (for 0.26 here: cbor2 pyzmq openai-harmony pybase64 cachetools einops
msgspec py-cpuinfo blake3 tiktoken mistral_common pydantic-extra-types pycountry). Two stand-ins,
installed only in the child process this script starts: vLLM's platform is its CPU platform with
the layers' torch code (no ``vllm._C``), and its Pixtral module, which imports a ``torchvision``
with compiled ops, is a stub (tiny-vl's tower is CLIP; Pixtral is never used). Not a test: CI has
no vLLM; ``tests/k15ray/test_vllm_prompt.py`` makes check 1 wherever vLLM runs for real.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STAND_INS = '''
import sys, types
pixtral = types.ModuleType("vllm.model_executor.models.pixtral")
for name in ("PixtralHFEncoderInfo", "PixtralHFVisionModel", "PixtralVisionConfig"):
    setattr(pixtral, name, type(name, (), {}))
sys.modules["vllm.model_executor.models.pixtral"] = pixtral
import vllm.platforms
from vllm.platforms.cpu import CpuPlatform
from vllm.platforms.interface import PlatformEnum

class TorchCpuPlatform(CpuPlatform):
    _enum = PlatformEnum.OOT  # not is_cpu(): layers take their torch code, not vllm._C ops

vllm.platforms._current_platform = TorchCpuPlatform()
'''


def check_prompts(vl_dir: str) -> None:
    import numpy as np
    from transformers import AutoProcessor
    from vllm.engine.arg_utils import EngineArgs
    from vllm.inputs.preprocess import InputPreprocessor
    from vllm.v1.engine.input_processor import InputProcessor

    from k15ray.prompting import encode_vision_prompt
    from k15ray.rollout.vllm_prompts import EnginePrompts, processor_cache_kwargs
    from k15ray.types import GenerationRequest

    kwargs = processor_cache_kwargs(vl_dir)
    for name, engine_kwargs in (("vLLM's defaults", {}), (f"processor_cache_kwargs {kwargs}", kwargs)):
        try:
            InputProcessor(EngineArgs(model=vl_dir, enforce_eager=True, **engine_kwargs).create_engine_config())
            print(f"engine input processor with {name}: starts")
        except ValueError as err:
            print(f"engine input processor with {name}: fails ({str(err).splitlines()[0][:90]})")
    config = EngineArgs(model=vl_dir, enforce_eager=True, **kwargs).create_engine_config()
    prompts = EnginePrompts.of(config.model_config.hf_config)
    preprocess = InputPreprocessor(config).preprocess
    processor = AutoProcessor.from_pretrained(vl_dir)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for images in ((noise,), (noise, np.zeros((48, 48, 3), np.uint8))):
        ids = list(encode_vision_prompt(processor, "How many dots?", list(images)))
        request = GenerationRequest("r", tuple(ids), 4, images=images)
        for earlier in ([], [5, 6, 7]):
            head = prompts.head(request)
            got = list(preprocess(prompts.prompt(head, request, earlier))["prompt_token_ids"])
            print(f"prompts: {len(images)} image(s), {len(earlier)} earlier: sent {len(head) + len(earlier)}, "
                  f"engine {len(got)}, request {len(ids) + len(earlier)}, equal {got == ids + earlier}")
        expanded = preprocess(prompts.prompt(ids, request))["prompt_token_ids"]
        print(f"prompts: {len(images)} image(s), expanded as the request holds it: engine {len(expanded)}")


def check_weights_and_features(vl_dir: str, scratch: str) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from vllm.config import set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.engine.arg_utils import EngineArgs

    from k15ray.models.llava_names import llava_weights, tower_type, write_llava_names

    learner = AutoModelForImageTextToText.from_pretrained(vl_dir)
    torch.manual_seed(0)
    with torch.no_grad():  # every tensor distinct and nonzero (fresh biases are zero)
        for p in learner.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    learner.save_pretrained(scratch)
    write_llava_names(scratch)

    def build() -> tuple[object, object]:
        from vllm.model_executor.models.llava import LlavaForConditionalGeneration

        config = EngineArgs(model=vl_dir, enforce_eager=True, dtype="float32").create_engine_config()
        with set_current_vllm_config(config):  # each model registers its layers in its own config
            return LlavaForConditionalGeneration(vllm_config=config, prefix=""), config

    first = EngineArgs(model=vl_dir, enforce_eager=True, dtype="float32").create_engine_config()
    with set_current_vllm_config(first):
        init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                     distributed_init_method=f"tcp://127.0.0.1:{29500 + os.getpid() % 1000}")
        initialize_model_parallel(1, 1)
    from_disk, _ = build()
    from_disk.load_weights(iter(load_file(f"{scratch}/model.safetensors").items()))  # type: ignore[attr-defined]
    in_memory, config = build()
    items = list(llava_weights(learner.state_dict().items(), tower_type(in_memory.config)))  # type: ignore[attr-defined]
    loaded = in_memory.load_weights(iter(items))  # type: ignore[attr-defined]
    a = dict(from_disk.named_parameters())  # type: ignore[attr-defined]
    b = dict(in_memory.named_parameters())  # type: ignore[attr-defined]
    differ = [n for n in a if not torch.equal(a[n], b[n])]
    print(f"weights: {len(b)} vLLM parameters, {len(loaded)} loaded from the learner's memory, "
          f"{len(set(b) - set(loaded))} missing, {len(differ)} differ from the checkpoint's")
    processor = AutoProcessor.from_pretrained(vl_dir)
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad(), set_current_vllm_config(config):
        ref = learner.get_image_features(pixel_values=pixels)
        ref = getattr(ref, "pooler_output", ref)
        ref = torch.cat(list(ref)) if isinstance(ref, (list, tuple)) else ref
        got = in_memory.embed_multimodal(pixel_values=pixels)  # type: ignore[attr-defined]
        got = torch.cat(list(got)) if isinstance(got, (list, tuple)) else got
    diff = float((ref.reshape(got.shape) - got).abs().max())
    print(f"features: vLLM {tuple(got.shape)} vs transformers {tuple(ref.shape)}, max abs difference {diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-path", required=True, help="a folder holding the vllm package")
    parser.add_argument("--deps", default="", help="a folder of vLLM's missing dependencies")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from k15ray.models import create_model
        from k15ray.rollout.vllm_plugin import register

        register()
        vl_dir = str(create_model("tiny-vl", Path(args.child) / "tiny-vl", seed=0))
        check_prompts(vl_dir)
        check_weights_and_features(vl_dir, str(Path(args.child) / "saved"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sitecustomize.py").write_text(STAND_INS)  # also in vLLM's own subprocesses
        root = Path(__file__).resolve().parent.parent
        path = [tmp, args.vllm_path, *([args.deps] if args.deps else []), str(root)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        sys.exit(subprocess.call([sys.executable, __file__, "--vllm-path", args.vllm_path, "--child", tmp], env=env))


if __name__ == "__main__":
    main()
