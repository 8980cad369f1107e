"""tuner stage."""
