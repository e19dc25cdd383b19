"""``minicnn.optim``: optimizers and learning-rate schedulers, as in ``torch.optim``.

    from minicnn.optim import SGD, Adam, AdamW, RMSprop
    from minicnn.optim.lr_scheduler import StepLR, CosineAnnealingLR, OneCycleLR, ...
"""

from minicnn.optim import lr_scheduler
from minicnn.optim.adam import Adam, AdamW
from minicnn.optim.optimizer import Optimizer
from minicnn.optim.rmsprop import RMSprop
from minicnn.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
