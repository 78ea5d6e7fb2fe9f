"""page/session.py: replay follows one timeline for both panels."""

from fakes import ar_history, diffusion_history
from page.session import ar_step_for
from page.settings import SAME_SECONDS, SAME_SHARE


def test_the_ar_panel_follows_the_diffusion_timeline():
    diffusion = diffusion_history(4, [[(i, 5, 0.5)] for i in range(4)], seconds=1.0)  # steps end at 1, 2, 3, 4 s
    ar = ar_history([5] * 6, seconds=0.5)  # tokens at 0.5, 1.0, ..., 3.0 s
    assert ar_step_for(diffusion, ar, 0, SAME_SECONDS) == 0
    assert ar_step_for(diffusion, ar, 1, SAME_SECONDS) == 2
    assert ar_step_for(diffusion, ar, 4, SAME_SECONDS) == 6
    assert ar_step_for(diffusion, ar, 2, SAME_SHARE) == 3
    assert ar_step_for(None, ar, 4, SAME_SECONDS) == 4


def test_live_charts_redraw_at_most_once_an_interval_and_only_after_new_steps():
    from page.race import PanelView
    from page.session import LiveCharts

    views = {"commits": "c", "map": "m", "race": "r"}
    d = diffusion_history(4, [[(0, 5, 0.5)]])
    panels = (PanelView("diffusion", "d", "running", d), PanelView("autoregressive", "a", "running", None))
    live = LiveCharts(interval=3600)
    assert set(live(views, panels)) == {"c", "m", "r"}  # the first step: drawn
    assert live(views, panels) == {}  # nothing new
    later = diffusion_history(4, [[(0, 5, 0.5)], [(1, 5, 0.5)]])
    assert live(views, (panels[0].__class__("diffusion", "d", "running", later), panels[1])) == {}  # too soon
    assert set(LiveCharts(interval=0)(views, panels)) == {"c", "m", "r"}
