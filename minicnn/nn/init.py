"""``minicnn.nn.init``: re-exports :mod:`minicnn.nn.modules.init`."""
