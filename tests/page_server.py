"""The real page served on loopback in this process, for the API, browser and screenshot code."""

from __future__ import annotations

import socket
import threading

from fakes import TINY_AR, TINY_DIFFUSION, tiny_load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(load=tiny_load, diffusion=TINY_DIFFUSION, ar=TINY_AR, custom_models: bool | None = True):
    """Launch the page on loopback in this process; returns (demo, url). Close with demo.close().

    Custom model ids are allowed by default, since the page tests type test models (a broken one, one of the
    wrong kind) into the pickers; None reads UNMASK_ALLOW_CUSTOM_MODELS, as the real page does."""
    import app

    demo = app.build_demo(load=load, diffusion_model=diffusion, ar_model=ar, custom_models=custom_models)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def unmask_threads() -> list[threading.Thread]:
    """Threads the page started (workers and the AR generate thread) that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("unmask-") and t.is_alive()]
