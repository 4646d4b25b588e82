"""Gradio front end: the whole flow in the browser, a thin layer over ``workbench``.

``app.py`` builds the page from ``tabs/`` (one module per step); ``steps/`` (one module per
step, named as its tab) and ``uploads.py`` (step 1's uploads) hold the plain functions the
tabs call; ``jobs.py`` runs training as separate processes; ``workspaces.py`` maps the names a
session may open to folders.
"""

import os

# No telemetry: Gradio reads this when it is first imported (it also stops its online version
# check). Set here, so it holds whichever ui module is imported first.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
