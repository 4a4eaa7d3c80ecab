"""Loss terms added to a prompt-tuning method: the interface (:mod:`.base`) and the registered terms.

Importing this package registers every built-in term in :data:`REGULARIZERS`: ``kgcoop`` (:mod:`.kgcoop`),
``npt`` (:mod:`.npt`), ``craft`` (:mod:`.craft`) and ``promptsrc`` (:mod:`.promptsrc`); ``docs/methods.md``
gives their loss forms, sources and differences from the original code.
"""

from .base import REGULARIZERS, Regularizer, SetupContext, StepOutput, build_regularizer, register_regularizer
from .craft import CraftRegularizer
from .kgcoop import KgCoOpRegularizer
from .npt import NPTRegularizer
from .promptsrc import PromptSRCRegularizer

__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "SetupContext",
    "StepOutput",
    "build_regularizer",
    "register_regularizer",
    "KgCoOpRegularizer",
    "NPTRegularizer",
    "CraftRegularizer",
    "PromptSRCRegularizer",
]
