"""Draw a :class:`~cnnvis.scene.Scene` with vispy, on screen or offscreen.

* :mod:`cnnvis.render.canvas` - ``SceneCanvas``: one vispy view per panel of the scene; the Qt
  viewer embeds it, the PNG export renders it offscreen.
* :mod:`cnnvis.render.panel` - the visuals of one panel and their level of detail.
* :mod:`cnnvis.render.glvisuals` - small vispy visuals that upload their geometry once.
* :mod:`cnnvis.render.geometry` - the numpy geometry they upload (quads, ribbons, the atlas).
* :mod:`cnnvis.render.offscreen` - an offscreen GL application (EGL, then OSMesa) and
  ``render_array(scene, size)``, the scene as an RGB array.

No Qt here, and nothing here loads a session: the scene comes in ready. Importing this package
imports nothing heavy.
"""

import importlib.util

# Mesa's software OpenGL loads its own LLVM; if torch imports triton (which bundles another LLVM)
# after that, the process segfaults. Loaded first, triton is harmless: every GL path in cnnvis
# (the canvas, the viewer's window, the offscreen export) imports this package before it makes a
# context.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401
