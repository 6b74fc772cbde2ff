"""The opsdeck CDK app: ``functions/catalog.py`` → one CloudFormation stack per stage.

``cdk synth`` / ``cdk deploy`` (cdk.json runs ``python -m infra_cdk``), or ``python -m infra_cdk``
without the CDK CLI. ``app.build_app`` → ``stack.OpsdeckStack``, composed of one construct per
concern (network, data, secrets, layer, queues, functions, schedules, api, migrations,
monitoring). See docs/deploy.md.
"""
