"""Settings shared by everything that loads Hugging Face models."""

from __future__ import annotations


def quiet_hf() -> None:
    """Silence the progress bars and chatter transformers prints while loading."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
