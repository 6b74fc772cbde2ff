"""Per-task-type job metrics (CloudWatch EMF through Powertools, namespace ``opsdeck``).

``JobsDispatched``, ``JobsSucceeded``, ``JobsFailed``, ``JobsTimedOut`` and ``JobsRetried``
carry the dimensions ``service`` (= ``platform_sync``) and ``task_type``; the alarms in
``infra_cdk/monitoring.py`` (failure rate, stalled dispatcher) read exactly these.
``DispatcherTicks`` counts every tick that found its task type running (its absence for
several minutes is the stalled-dispatcher alarm).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "opsdeck"
SERVICE = "platform_sync"


def count(name: str, task_type: str, value: float = 1) -> None:
    """One EMF line for ``name`` with ``service`` and ``task_type`` dimensions."""
    if value <= 0 and name != "DispatcherTicks":
        return
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return  # as Powertools' Metrics does (``opsdeck local up`` without --metrics)
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=namespace,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="task_type", value=task_type)
