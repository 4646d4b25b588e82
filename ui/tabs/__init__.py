"""One module per step of the page; each has ``build(ctx)``."""
