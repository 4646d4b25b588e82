"""Gradio front end (built in a later issue)."""
