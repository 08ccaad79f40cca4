"""One widget per module (``qt_<name>.py``); widgets show state, they hold no model logic."""
