"""pyqtgraph's global options, set once when the first view module is imported.

Row-major makes ``ImageItem`` take numpy images as (rows, columns) -- the way Study.pixels,
the heat-map layer and every DICOM are laid out -- so no transposes anywhere.
"""

import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background=None, foreground="#8d96a0")
