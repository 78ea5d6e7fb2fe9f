"""visualize/: History (+ a tokenizer for text) -> HTML, plotly figures and export files.

Pure functions, no model code: tokens (ids -> per-token text), colors (the step colour scale),
canvas (one frame of the canvas, the legend), charts (plotly figures), export (run JSON, a
self-contained HTML animation, a GIF). Importing it loads no model, no torch and no transformers
(it needs only generation.history, which is plain data), and changes no global state.
"""
