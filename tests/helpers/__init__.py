"""What several test modules share: the app harness, the link probe, browser waits, image makers,
a scripted provider, tags and a clock. Not tests; test modules import from here, never from each
other or from `conftest`."""
