"""ZeroGPU support that is a no-op elsewhere: `gpu` is `spaces.GPU` on a Hugging Face ZeroGPU Space.

On ZeroGPU a GPU is attached only while a function decorated with `spaces.GPU` runs; everywhere
else (a laptop, CI, a CPU Space) the `spaces` package is absent and `gpu` returns the function
unchanged. Both spellings work: `@gpu` and `@gpu(duration=120)`.
"""

from __future__ import annotations

try:  # the `spaces` package exists only on Hugging Face Spaces
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_kwargs):
        """Identity decorator: gpu(f) is f, and gpu(duration=...)(f) is f."""
        if fn is None:
            return lambda f: f
        return fn
