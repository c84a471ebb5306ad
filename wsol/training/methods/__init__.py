"""WSOL training methods for ``wsol train --wsol-method``: cam, has, acol, spg, adl, cutmix.

One module per method, registered in :mod:`.base`; ``list_train_methods()`` lists them.
"""
from wsol.training.methods.base import (TrainMethod, create_train_method, list_train_methods, option_flag,
                                            register_train_method, train_outputs)

__all__ = ["TrainMethod", "create_train_method", "list_train_methods", "option_flag", "register_train_method",
           "train_outputs"]
