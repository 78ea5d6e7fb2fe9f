"""Check our native loads of Dream and LLaDA against the published modeling code, logit for logit.

For each family: write a tiny random checkpoint in the published on-disk format
(tests/tiny_hub_checkpoints.py), load it with our loader (native Qwen2 / Llama classes on
transformers 5, bidirectional), and run the published `modeling_dream.py` / `modeling_llada.py`
with `trust_remote_code` on the same files in a separate Python environment that has the
transformers version that code pins (it does not run on transformers 5). Both see the same input
ids (masks included); the table gives the max absolute logit difference in float32.

The published code is not part of this repository. Get it from the model repositories on the hub
(or a mirror) and make the environments, e.g.:

    python3 -m venv /tmp/ref_dream && /tmp/ref_dream/bin/pip install torch==2.13.0 transformers==4.46.2 safetensors
    python3 -m venv /tmp/ref_llada && /tmp/ref_llada/bin/pip install torch==2.13.0 transformers==4.38.2 safetensors
    .venv/bin/python -m bench.reference_logits --dream-code DIR --llada-code DIR

where DIR holds modeling_*.py, configuration_*.py (and Dream's generation_utils.py) as published.

Measured (CPU, float32, 48 tokens with masks; published files as mirrored in ZHZisZZ/dllm's first
commit 03270de7, identical in computation to the hub copies):

    family  published code run with            max |diff|  max |logit|  argmax agree  causal |diff|
    Dream   DreamModel, transformers 4.46.2      0.00e+00         3.99          100%       3.73e+00
    LLaDA   LLaDAModelLM, transformers 4.38.2    0.00e+00         3.66          100%       3.24e+00
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from generation.dream_llada import load_dream, load_llada  # noqa: E402
from tiny_hub_checkpoints import DREAM_TINY_MASK_ID, LLADA_TINY_MASK_ID, write_dream, write_llada  # noqa: E402

# Runs inside the reference environment: the published code, loaded the published way.
REFERENCE_RUN = """
import sys, torch, transformers
from transformers import AutoModel
checkpoint, ids_path, out_path = sys.argv[1:4]
model = AutoModel.from_pretrained(checkpoint, trust_remote_code=True, torch_dtype=torch.float32).eval()
with torch.no_grad():
    logits = model(torch.load(ids_path)).logits
torch.save(logits.float(), out_path)
print(type(model).__name__, "transformers", transformers.__version__)
"""

FAMILIES = {
    # family: (writer, our loader, mask id, published files needed)
    "Dream": (write_dream, load_dream, DREAM_TINY_MASK_ID,
              ("modeling_dream.py", "configuration_dream.py", "generation_utils.py")),
    "LLaDA": (write_llada, load_llada, LLADA_TINY_MASK_ID, ("modeling_llada.py", "configuration_llada.py")),
}


def compare(family: str, code_dir: Path, python: str, work: Path, length: int = 48, seed: int = 0) -> dict:
    writer, loader, mask_id, files = FAMILIES[family]
    checkpoint = writer(work / family.lower(), seed=seed)
    ids = torch.randint(0, 256, (1, length), generator=torch.Generator().manual_seed(seed))
    ids[0, length // 2:: 3] = mask_id  # the inputs the sampler really gives: prompt, answer, masks
    torch.save(ids, work / "ids.pt")
    ours = loader(str(checkpoint), "cpu", torch.float32)
    with torch.no_grad():
        native = ours.module(ids).logits.float()
    published = work / f"{family.lower()}-published"
    shutil.copytree(checkpoint, published)
    for name in files:
        shutil.copy(code_dir / name, published / name)
    run = subprocess.run([python, "-c", REFERENCE_RUN, str(published), str(work / "ids.pt"), str(work / "ref.pt")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the published {family} code failed:\n{run.stderr[-3000:]}")
    reference = torch.load(work / "ref.pt")
    diff = (native - reference).abs()
    return {"family": family, "reference": run.stdout.strip().splitlines()[-1], "shape": tuple(native.shape),
            "max_abs": diff.max().item(), "max_logit": reference.abs().max().item(),
            "causal_abs": (_causal_logits(ours.module, ids) - reference).abs().max().item(),
            "argmax_agree": (native.argmax(-1) == reference.argmax(-1)).float().mean().item()}


def _causal_logits(module: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The same native model with causal attention: the comparison must tell the two apart."""
    switched = [m for m in module.modules() if getattr(m, "is_causal", None) is False]
    for m in switched:
        m.is_causal = True
    module.config.is_causal = True
    try:
        with torch.no_grad():
            return module(ids).logits.float()
    finally:
        for m in switched:
            m.is_causal = False
        module.config.is_causal = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dream-code", type=Path, default=Path("/tmp/ref/dream_ref"))
    parser.add_argument("--llada-code", type=Path, default=Path("/tmp/ref/llada_ref"))
    parser.add_argument("--dream-python", default="/tmp/ref_dream/bin/python")
    parser.add_argument("--llada-python", default="/tmp/ref_llada/bin/python")
    args = parser.parse_args()
    runs = {"Dream": (args.dream_code, args.dream_python), "LLaDA": (args.llada_code, args.llada_python)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family, (code, python) in runs.items():
            rows.append(compare(family, code, python, Path(tmp)))
    print(f"{'family':<7} {'published code run with':<40} {'logits':<16} {'max |diff|':>11} {'max |logit|':>11} "
          f"{'argmax agree':>12} {'causal |diff|':>13}")
    for r in rows:
        print(f"{r['family']:<7} {r['reference']:<40} {str(r['shape']):<16} {r['max_abs']:>11.2e} "
              f"{r['max_logit']:>11.2f} {r['argmax_agree']:>12.0%} {r['causal_abs']:>13.2e}")
    print("causal |diff|: the same native weights run with causal attention (what a load that forgot to make the\n"
          "model bidirectional would give), to show the comparison can fail.")


if __name__ == "__main__":
    main()
