"""Template hygiene that cfn-lint checks (tests/infra/test_cfn_lint.py).

``PruneRedundantDependsOn`` (an aspect on the whole stack) drops every ``DependsOn`` entry that
the resource's own properties already imply through a ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``
of the same logical id — cfn-lint's W3005. CDK writes such entries itself: a Lambda function
depends on its role *and* its role's default policy (only the policy is not implied, since
the function reads ``Role.Arn``), the migration resource depends on the proxy whose endpoint
it carries. Nothing that orders deployment is lost: CloudFormation orders by references
anyway, and every entry not implied stays.

How: aspects run before CDK turns construct dependencies (``node.add_dependency``) into
resource ``DependsOn``, so the aspect computes that list the way CDK does (the resource's own
dependencies, plus every resource under each construct that the resource or one of its
ancestors depends on), removes what the properties imply, and writes the rest as the
resource's ``DependsOn`` override. tests/infra/test_cfn_lint.py checks that no entry left is
implied and that each function still waits for its role's policy and the migrations.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnResource, IAspect, Stack
from constructs import IConstruct


@jsii.implements(IAspect)
class PruneRedundantDependsOn:
    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or getattr(node, "_opsdeck_pruned", False):
            return
        node._opsdeck_pruned = True  # type: ignore[attr-defined]
        stack = Stack.of(node)
        depends_on = {stack.get_logical_id(d) for d in _dependencies(node, stack)}
        depends_on.discard(stack.get_logical_id(node))
        if not depends_on:
            return
        # L1 classes keep their properties in _cfn_properties
        referenced = json.dumps(stack.resolve(node._cfn_properties))
        needed = sorted(d for d in depends_on if not _mentions(referenced, d))
        if len(needed) == len(depends_on):
            return
        if needed:
            node.add_override("DependsOn", needed)
        else:
            node.add_deletion_override("DependsOn")


def _dependencies(resource: CfnResource, stack: Stack) -> list[CfnResource]:
    found: list[CfnResource] = [d for d in resource.obtain_dependencies() if isinstance(d, CfnResource)]
    for scope in resource.node.scopes:
        for target in scope.node.dependencies:
            found += [c for c in target.node.find_all() if isinstance(c, CfnResource)]
    return [d for d in found if Stack.of(d) is stack]


def _mentions(text: str, logical_id: str) -> bool:
    return f'"{logical_id}"' in text or "${" + logical_id in text
