"""`prepare_session` (the first opening of a session without a window) saves every cache the
overview reads, so that the next opening computes nothing."""

from __future__ import annotations

import pytest
from training_helpers import demo_cnn, tracked_run

pytestmark = pytest.mark.timeout(180)


def test_prepared_session_opens_without_unsaved_caches(tmp_path):
    from cnnvis.scene import overview_input
    from cnnvis.session import open_session
    from cnnvis.viewer.app import prepare_session

    path = tracked_run(demo_cnn(), lr=1e-3, epochs=1).save(tmp_path / "run")
    prepare_session(path)
    again = open_session(path)
    overview_input(again, projection=False)  # what the window reads first
    assert not again.unsaved_row_orders  # connections, row orders and tiles came from the files
