"""Load labelled data: files, DataFrames, HF datasets, Sentiment140, CrowdFlower tweets."""

from augment.data.cleaning import clean_text
from augment.data.columns import LABEL, TEXT
from augment.data.readers import label_counts, load_dataset, load_texts, read_frame
from augment.data.sampling import hold_out_per_class, sample_per_class, split_train_test

__all__ = ["TEXT", "LABEL", "clean_text", "hold_out_per_class", "label_counts", "load_dataset", "load_texts",
           "read_frame", "sample_per_class", "split_train_test"]
