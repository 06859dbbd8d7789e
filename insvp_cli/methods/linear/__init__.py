"""Linear probe: the frozen backbone's pooled features and a trainable linear head."""
