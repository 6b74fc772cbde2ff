"""cdk-nag (AwsSolutions) acknowledgements: each names its rule and says why, next to the
resource it concerns. cdk-nag 3 runs as a CDK policy-validation plugin; an unacknowledged
finding fails ``cdk synth`` (and ``tests/infra``)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def suppress(
    construct: IConstruct, rule: str, reason: str, *, applies_to: Sequence[str] | None = None
) -> None:
    """Acknowledge AwsSolutions-``rule`` on ``construct`` and below for ``reason``.

    ``applies_to`` narrows it to findings such as ``Resource::*`` (``AwsSolutions-IAM5[Resource::*]``).
    """
    ids = (
        [f"AwsSolutions-{rule}[{finding}]" for finding in applies_to]
        if applies_to
        else [f"AwsSolutions-{rule}"]
    )
    Validations.of(construct).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))
