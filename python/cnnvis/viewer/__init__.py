"""The interactive viewer (``python -m cnnvis viewer [SESSION]``): vispy inside a Qt window.

* :mod:`cnnvis.viewer.canvas` - ``SceneCanvas``, draws a :class:`cnnvis.scene.Scene` (shared with
  the PNG export; no Qt).
* :mod:`cnnvis.viewer.app` - ``ViewerWindow`` (menus, panels, mouse), ``open_session``,
  ``prepare_session``, ``run_viewer``.
* :mod:`cnnvis.viewer.controller` - ``Controller``: selections (samples, a class, a cluster or
  neuron), highlights and edits (move, extract, merge, split, undo/redo, saved with the session),
  no widgets.
* :mod:`cnnvis.viewer.projection`, :mod:`cnnvis.viewer.panels` - the t-SNE panel with box/lasso
  selection and hover cards, the details and legend panels.

Importing this package imports nothing heavy; Qt is loaded by ``app``, ``controller`` and the
panels only.

Example
-------
>>> from cnnvis.viewer.app import open_session, ViewerWindow, qt_app  # doctest: +SKIP
>>> app = qt_app()
>>> win = ViewerWindow(open_session("path/to/session"), "path/to/session")
>>> win.controller.select_class(3)        # light up the neurons that respond to class 3
>>> win.controller.merge_clusters("block3.relu", [0, 1])
>>> win.show(); app.exec()
"""

import importlib.util

# Mesa's software OpenGL loads its own LLVM; if torch imports triton (which bundles another LLVM)
# after that, the process segfaults. Loaded first, triton is harmless: every GL path in cnnvis
# (the canvas, the window, the offscreen export) imports this package before it makes a context.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401
