"""HTTP API: one API Gateway v2 HTTP API serving every ``Http`` catalog entry.

* Routes: each catalog ``Route`` becomes ``METHOD /path`` integrated with its function (Lambda
  proxy, payload format 2.0 — what Mangum and ``localcloud.events.http_event`` speak).
* Auth: routes marked ``authorizer="jwt"`` get the JWT authorizer (issuer and audience from
  context ``jwtIssuer``/``jwtAudience``; the route's ``scopes`` as authorization scopes); API
  Gateway verifies the token and passes the claims in ``requestContext.authorizer.jwt``. Routes
  with ``authorizer=None`` are public at the gateway and authenticate in the function
  (``opsdeck.auth``) if at all.
* Stage ``$default``: auto-deploy, throttling (context ``throttleRateLimit``/``throttleBurstLimit``),
  JSON access logs, CORS preflight answered by API Gateway (context ``corsAllowOrigins``).
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw_rest
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.catalog import Function, Http, Route

from .config import RETENTION_DAYS, DeployConfig
from .nag import suppress

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "principal": "$context.authorizer.claims.sub",
    "userAgent": "$context.identity.userAgent",
}
CORS_HEADERS = ("authorization", "content-type", "if-none-match", "x-request-id")


API_NAME = "opsdeck"


class CatalogRouteError(ValueError):
    """A catalog route cannot be deployed as declared."""


def catalog_routes(functions: tuple[Function, ...]) -> list[tuple[Route, Function]]:
    """Every route with its function; refuses what API Gateway would refuse or we would ignore."""
    routes = []
    for f in functions:
        if not isinstance(f.trigger, Http):
            continue
        if f.trigger.api != API_NAME:
            raise CatalogRouteError(f"function {f.name!r}: only the {API_NAME!r} HTTP API is deployed")
        for r in f.trigger.routes:
            if r.scopes and r.authorizer != "jwt":
                raise CatalogRouteError(f"function {f.name!r}: {r.key} has scopes but no JWT authorizer")
            routes.append((r, f))
    return routes


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        config: DeployConfig,
        lambdas: dict[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, id)
        cors = None
        if config.cors_allow_origins:
            cors = apigw.CorsPreflightOptions(
                allow_origins=list(config.cors_allow_origins),
                allow_methods=[apigw.CorsHttpMethod.ANY],
                allow_headers=list(CORS_HEADERS),
                expose_headers=["etag", "x-request-id", "retry-after"],
                max_age=Duration.hours(1),
            )
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=config.stack_name,
            description=f"opsdeck HTTP API ({config.stage})",
            cors_preflight=cors,
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=getattr(logs.RetentionDays, RETENTION_DAYS[config.log_retention_days]),
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            access_log_settings=_AccessLogs(
                apigw.LogGroupLogDestination(self.access_logs),
                apigw_rest.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
            ),
        )
        self.authorizer = authorizers.HttpJwtAuthorizer(
            "jwt",
            config.jwt_issuer,
            jwt_audience=[config.jwt_audience],
            authorizer_name="jwt",
            identity_source=["$request.header.Authorization"],
        )
        self.integrations: dict[str, integrations.HttpLambdaIntegration] = {}
        self.routes: dict[str, apigw.HttpRoute] = {}
        for route, function in catalog_routes(functions):
            integration = self.integrations.get(function.name)
            if integration is None:
                integration = integrations.HttpLambdaIntegration(
                    f"{function.name}-integration",
                    lambdas[function.name],
                    payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
                    # one invoke permission per function (scoped to this API), not one per route:
                    # keeps the template far from CloudFormation's 500-resource limit as routes grow
                    scope_permission_to_route=False,
                )
                self.integrations[function.name] = integration
            http_route = apigw.HttpRoute(
                self,
                route.key,
                http_api=self.api,
                route_key=apigw.HttpRouteKey.with_(route.path, apigw.HttpMethod(route.method)),
                integration=integration,
                authorizer=self.authorizer if route.authorizer == "jwt" else apigw.HttpNoneAuthorizer(),
                authorization_scopes=list(route.scopes) or None,
            )
            if route.authorizer is None:
                suppress(
                    http_route,
                    "APIG4",
                    f"{route.key} is public at the gateway by catalog decision ({function.name}): the "
                    "function authenticates the caller itself (opsdeck.auth) or the route is a public probe",
                )
            self.routes[route.key] = http_route
        self.url = self.api.api_endpoint
        CfnOutput(self, "Url", value=self.api.api_endpoint, description="opsdeck HTTP API base URL")


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """Access log settings of the stage (a jsii interface implemented in Python)."""

    def __init__(
        self, destination: apigw.IAccessLogDestination, log_format: apigw_rest.AccessLogFormat
    ) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_rest.AccessLogFormat:
        return self._format
