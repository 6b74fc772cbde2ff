"""HTTP API: one API, catalog routes, JWT authorizer from context, throttling, CORS, access logs."""

from __future__ import annotations

import json

import pytest

from infra_cdk.api import ACCESS_LOG_FORMAT
from tests.infra.conftest import SYNTHETIC_CONTEXT, Synth


def test_one_http_api_with_a_throttled_logged_default_stage(synth: Synth):
    (api,) = synth.of_type("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": synth.config.throttle_burst_limit,
        "ThrottlingRateLimit": synth.config.throttle_rate_limit,
    }
    log_group = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert json.loads(props["AccessLogSettings"]["Format"]) == ACCESS_LOG_FORMAT


def test_integrations_speak_payload_format_2(synth: Synth):
    for integration in synth.of_type("AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_jwt_authorizer_from_context_on_protected_routes_only(synthetic: Synth):
    (authorizer_id, authorizer), *_ = synthetic.of_type("AWS::ApiGatewayV2::Authorizer").items()
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["JwtConfiguration"] == {
        "Issuer": SYNTHETIC_CONTEXT["jwtIssuer"],
        "Audience": [SYNTHETIC_CONTEXT["jwtAudience"]],
    }
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synthetic.of_type("AWS::ApiGatewayV2::Route").values()
    }
    assert routes["GET /ops/private/{item_id}"]["AuthorizerId"] == {"Ref": authorizer_id}
    assert routes["POST /ops/private"]["AuthorizationScopes"] == ["ops/write"]
    assert routes["ANY /ops/files/{path+}"]["AuthorizationType"] == "JWT"
    assert routes["GET /ops/health"]["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in routes["GET /ops/health"]


def test_cors_from_context(synthetic: Synth, real: Synth):
    (api,) = synthetic.of_type("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://admin.example.com"]
    assert "authorization" in cors["AllowHeaders"]
    (dev_api,) = real.of_type("AWS::ApiGatewayV2::Api").values()
    assert dev_api["Properties"]["CorsConfiguration"]["AllowOrigins"] == ["*"]


def test_the_api_may_invoke_exactly_the_http_functions(synth: Synth):
    from functions.catalog import Http

    http = {synth.target_id(f.name) for f in synth.functions if isinstance(f.trigger, Http)}
    (api_id,) = synth.of_type("AWS::ApiGatewayV2::Api")
    permissions = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    from tests.infra.test_catalog_agreement import _ref_target

    assert sorted(_ref_target(p["FunctionName"]) for p in permissions) == sorted(http)
    for permission in permissions:  # this API only
        assert {"Ref": api_id} in permission["SourceArn"]["Fn::Join"][1]


@pytest.mark.parametrize(
    ("route_change", "trigger_change", "message"),
    [
        ({"scopes": ("ops/read",)}, {}, "has scopes but no JWT authorizer"),
        ({}, {"api": "other"}, "only the 'opsdeck' HTTP API"),
    ],
)
def test_routes_api_gateway_would_refuse_are_refused(route_change, trigger_change, message):
    from dataclasses import replace

    from infra_cdk.api import CatalogRouteError, catalog_routes
    from tests.infra.conftest import SYNTHETIC

    api = next(f for f in SYNTHETIC if f.name == "backoffice-api")
    route = replace(api.trigger.routes[0], **route_change)
    bad = replace(api, trigger=replace(api.trigger, routes=(route,), **trigger_change))
    with pytest.raises(CatalogRouteError, match=message):
        catalog_routes((bad,))
