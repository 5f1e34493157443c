"""The interactive viewer (``python -m cnnvis viewer [SESSION]``): a Qt window around
:mod:`cnnvis.render`.

* :mod:`cnnvis.viewer.app` - ``ViewerWindow`` (menus, panels), ``open_session``,
  ``prepare_session``, ``qt_app``.
* :mod:`cnnvis.viewer.overview` - the mouse on the overview: hit testing, clicks, drags that move
  a neuron, the context menu.
* :mod:`cnnvis.viewer.controller` - ``Controller``: selections (samples, a class, a cluster or
  neuron), highlights and edits (move, extract, merge, split, undo/redo, saved with the session),
  no widgets.
* :mod:`cnnvis.viewer.projection`, :mod:`cnnvis.viewer.panels` - the t-SNE panel with box/lasso
  selection and hover cards, the details and legend panels.

Importing this package imports nothing heavy; Qt is loaded by ``app``, ``controller`` and the
panels only. The overview is drawn by :class:`cnnvis.render.canvas.SceneCanvas`.

Example
-------
>>> from cnnvis.viewer.app import open_session, ViewerWindow, qt_app  # doctest: +SKIP
>>> app = qt_app()
>>> win = ViewerWindow(open_session("path/to/session"), "path/to/session")
>>> win.controller.select_class(3)        # light up the neurons that respond to class 3
>>> win.controller.merge_clusters("block3.relu", [0, 1])
>>> win.show(); app.exec()
"""

# every GL path imports cnnvis.render first (it loads triton before any GL context; see there)
import cnnvis.render  # noqa: F401
