"""wsol: a weakly-supervised object localization benchmark."""
__version__ = "0.1.0"
