"""dlptui: a keyboard-driven terminal console for a deep-learning platform."""

__version__ = "0.1.0"
