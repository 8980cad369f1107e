"""The embedded demo: a fictional knowledge world and `ragtune demo`, the main job end to end."""
