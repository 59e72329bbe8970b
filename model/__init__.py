"""The window classifier: pure numpy, from text to entity spans."""
