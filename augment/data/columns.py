"""The two columns every loaded frame has; the lowest piece of the data stage, so any part of it may name them."""

TEXT = "text"
LABEL = "label"
