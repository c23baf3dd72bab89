"""Dataset builders (TFDS, array_record format; no TensorFlow needed)."""
