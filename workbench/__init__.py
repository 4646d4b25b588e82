"""The workbench: fine-tune self-supervised speech models (wav2vec 2.0, XLS-R, MMS) with CTC
on a small amount of transcribed speech in any language."""

__version__ = "0.1.0"
