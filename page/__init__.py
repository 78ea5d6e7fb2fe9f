"""page/: the rooms behind app.py's page (app.py keeps the layout and the wiring).

- settings.py   the controls' values -> DiffusionConfig and ARConfig; timing modes; the help texts
- pickers.py    presets and model pickers, memory checks before a load, the page's loader
- race.py       the worker side of a click: Panel, run_panel, race (the GPU work), PanelView
- session.py    a run's session: Session, run_generation (frames, finish), replay
- fragments.py  HTML around the canvases: panels, live figures, messages, legend box, timing note

Imports flow one way: settings <- fragments <- pickers <- race <- session <- app.py.
"""
