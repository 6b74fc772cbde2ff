"""EventBridge schedule expressions live in the layer (``opsdeck.schedules``): ``ops-api``
computes next fire times with them on Lambda. This module keeps the local cloud's import path."""

from opsdeck.schedules import Cron, Rate, ScheduleExpressionError, next_fire, parse

__all__ = ["Cron", "Rate", "ScheduleExpressionError", "next_fire", "parse"]
