"""HTTP routes, one module per API surface. ``modelmux.app`` includes them."""
