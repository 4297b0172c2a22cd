"""Where detections go.  A sink is any callable taking a Detection; ``close()`` if it has one
is called once at shutdown, after the last detection, so it can deliver what it holds."""
