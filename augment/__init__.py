"""Generative data augmentation for text classification.

The names below load on first use (``augment.lazy``), so importing a small piece
such as ``augment.errors`` does not load torch.
"""

from augment.lazy import lazy_names

__version__ = "0.1.0"
_EXPORTS = {"Augmenter": "augment.api", "augment_rows": "augment.api", "AugmentError": "augment.errors",
            "DataConfig": "augment.config", "FinetuneConfig": "augment.config", "GenerateConfig": "augment.config",
            "RecipeConfig": "augment.recipe", "load_dataset": "augment.data"}
__all__ = ["Augmenter", "AugmentError", "DataConfig", "FinetuneConfig", "GenerateConfig", "RecipeConfig",
           "augment_rows", "load_dataset", "__version__"]
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
