"""Generative data augmentation for text classification."""

from augment.api import Augmenter, augment_rows
from augment.config import DataConfig, FinetuneConfig, GenerateConfig
from augment.data import load_dataset
from augment.errors import AugmentError
from augment.recipe import RecipeConfig

__version__ = "0.1.0"
__all__ = ["Augmenter", "AugmentError", "DataConfig", "FinetuneConfig", "GenerateConfig", "RecipeConfig",
           "augment_rows", "load_dataset", "__version__"]
