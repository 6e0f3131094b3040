"""Book maintenance scripts (not part of vgg_helpers)."""
