"""The epoch player (View > Training animation) on the demo session, under a display
(``xvfb-run -a``): it steps and plays through the snapshots, a click tracks a point, and the
tracked points' letters and rings follow them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnvis.analysis.animation import frame_at
from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()


def _settle(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


@pytest.fixture(scope="module")
def player(demo_session):
    from cnnvis.session import open_session
    from cnnvis.viewer.app import ViewerWindow, qt_app

    app = qt_app()
    window = ViewerWindow(open_session(demo_session), str(demo_session))
    window.show()
    window.act_player.trigger()
    p = window.player
    _settle(app)
    yield app, p
    p.close()
    window.close()


def test_the_player_steps_through_the_snapshots(player):
    app, p = player
    assert p.frames.shape[0] == 6 and p.frames.shape[1] == 450
    p.set_time(1.0)
    assert "epoch 1 " in p.caption.text() and p.slider.value() == 100
    assert np.allclose(p.positions, p.frames[1])
    p.slider.setValue(270)  # 70% of the way from keyframe 2 to keyframe 3
    assert p.time == 2.7
    f = 0.7 * 0.7 * (3 - 2 * 0.7)  # eased
    assert np.allclose(p.positions, p.frames[2] + (p.frames[3] - p.frames[2]) * f, atol=1e-5)
    assert "epoch 4 " in p.caption.text()  # the nearest snapshot (epochs 0, 1, 2, 4, 8, 12)


def test_the_player_plays_and_pauses(player):
    app, p = player
    p.set_time(0.0)
    drawn = p.frames_drawn
    p.play()
    assert p.playing and p.play_button.text() == "Pause"
    _settle(app, 0.8)
    assert p.time > 0.1 and p.frames_drawn > drawn + 3
    p.pause()
    stopped = p.time
    _settle(app, 0.3)
    assert not p.playing and p.time == stopped
    p.set_time(p.frames.shape[0] - 1)
    p.play()  # at the end: starts over
    assert p.time < 0.2
    p.pause()


def test_a_click_tracks_a_point_and_its_letter_follows_it(player):
    app, p = player
    p.clear_tracks()
    p.set_time(1.0)
    _settle(app, 0.1)
    row = 37
    xy = p.data_to_canvas(p.positions[[row]])[0]
    p.canvas.events.mouse_press(pos=xy, button=1, modifiers=())
    p.canvas.events.mouse_release(pos=xy, button=1, modifiers=())
    assert len(p.tracked) == 1
    picked = p.tracked[0]
    assert np.allclose(p.positions[picked], p.positions[row], atol=1e-3)  # it or one on top of it
    p.track(200)
    assert p.tracked == [picked, 200]
    assert list(p._letters.text) == ["A", "B"]
    for t in (1.0, 2.4, 4.0):
        p.set_time(t)
        where = frame_at(p.frames, t)[[picked, 200]]
        offset = p.letter_positions() - where
        assert np.allclose(offset, offset[0]) and np.all(offset[0] > 0)  # up and right
        assert np.allclose(p._letters.pos[:, :2], p.letter_positions(), atol=1e-5)
        # the trail ends at the point: the last vertex of each tracked point's segments
        trail = p._trails.pos.reshape(2, -1, 2)
        assert np.allclose(trail[:, -1], where, atol=1e-5)
    # the letters stay 12 px up and right of their points when the view zooms
    for zoom in (1.0, 0.5):
        p.view.camera.zoom(zoom)
        shift = p.data_to_canvas(p._letters.pos[:, :2]) - p.data_to_canvas(where)
        assert np.allclose(shift, [12.0, -12.0], atol=0.5), shift
    # a click far from every point tracks nothing; a click on a tracked point lets it go
    assert p.pick((1.0, 1.0)) is None
    p.track(200)
    assert p.tracked == [picked]


def test_the_screenshot_shows_the_tracked_ring(player):
    app, p = player
    p.clear_tracks()
    p.set_time(5.0)
    p.track(10)
    _settle(app, 0.3)
    image = p.canvas.render(alpha=False).astype(float)
    x, y = np.round(p.data_to_canvas(p.positions[[10]])[0]).astype(int)
    scale = image.shape[1] / p.canvas.size[0]  # physical pixels per logical pixel
    x, y = int(x * scale), int(y * scale)
    patch = image[max(y - 12, 0) : y + 13, max(x - 12, 0) : x + 13]
    from cnnvis.scene.colors import HIGHLIGHT

    near = np.linalg.norm(patch - np.array(HIGHLIGHT[:3]) * 255, axis=2) < 70
    assert near.sum() >= 4
