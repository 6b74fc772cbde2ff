"""DLQ replay lives in the layer (``opsdeck.replay``) so that ``ops-api`` runs the same code on
Lambda; this module keeps the local cloud's old import path."""

from opsdeck.replay import (
    MOVE_TASK_UNAVAILABLE,
    ReplayError,
    ReplayFailed,
    compile_filter,
    parse_rate,
    replay,
)

__all__ = ["MOVE_TASK_UNAVAILABLE", "ReplayError", "ReplayFailed", "compile_filter", "parse_rate", "replay"]
