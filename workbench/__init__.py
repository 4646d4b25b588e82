"""The workbench: fine-tune self-supervised speech models (wav2vec 2.0, XLS-R, MMS) with CTC
on a small amount of transcribed speech in any language."""

import os

__version__ = "0.1.0"

# transformers 5 turns its Hub-kernels integration on by default: a model put in training or
# eval mode on a GPU downloads compiled kernels from the Hub and runs them, a network call and
# remote code, which the workbench never runs (offline it stopped the first GPU training run).
# Set here so that every entry point (CLI, UI, recogniser, benchmarks) loads models without it.
os.environ["USE_HUB_KERNELS"] = "NO"
