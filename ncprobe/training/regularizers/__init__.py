"""Loss terms added to a prompt-tuning method: the interface (:mod:`.base`) and the registered terms.

Importing this package registers every built-in term in :data:`REGULARIZERS`.
"""

from .base import REGULARIZERS, Regularizer, SetupContext, StepOutput, build_regularizer, register_regularizer
from .kgcoop import KgCoOpRegularizer

__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "SetupContext",
    "StepOutput",
    "build_regularizer",
    "register_regularizer",
    "KgCoOpRegularizer",
]
