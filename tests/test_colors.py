"""visualize/colors.py: one sequential colour scale, early dark to late light, text always readable."""

from visualize.colors import VIRIDIS, contrast, luminance, step_color, text_color_for


def test_scale_runs_early_dark_to_late_light_and_text_stays_readable():
    assert step_color(1, 30) == VIRIDIS[0] and step_color(30, 30) == VIRIDIS[-1]
    colors = [step_color(k, 30) for k in range(1, 31)]
    lum = [luminance(c) for c in colors]
    assert lum == sorted(lum)  # lightness orders the steps, so the order survives colour blindness and greyscale
    assert min(contrast(c, text_color_for(c)) for c in colors) >= 4.5  # WCAG AA on every chip
    assert step_color(1, 1) == VIRIDIS[-1]
