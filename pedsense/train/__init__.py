"""Model definitions and training functions for the three model families."""
