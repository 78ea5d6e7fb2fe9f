"""page/: the rooms behind app.py's page (app.py keeps the layout and the wiring).

- settings.py   the controls' values -> DiffusionConfig and ARConfig; timing modes; the help texts
- pickers.py    presets and model pickers, the custom-model gate (ModelGate), memory checks, the page's loader
- race.py       the worker side of a click: Panel, run_panel, race (the GPU work), PanelView
- session.py    a run's session: Session, run_generation (frames, finish), replay
- fragments.py  HTML around the canvases: panels, live figures, messages, legend box, timing note
- sweep.py      the steps sweep: its worker (sweep_work) and the page generator (run_sweep_page)
- api.py        the API for programs and MCP tools: generate_data, sweep_data (plain data)

Imports flow one way: settings <- fragments <- pickers <- race <- session <- sweep <- api <- app.py.
"""
