"""The hub's gRPC API from a Python grpcio client: tools, calls, health checking and reflection."""

import json

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

import manifests
from grpc_client import agent, hub_pb2, open_channel, operator

# The v1 and v1alpha reflection protocols use the same messages under different service names.
REFLECTION_METHODS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)


def reflected_services(channel: grpc.Channel) -> list[str]:
    """Return the service names the hub lists through server reflection, v1 first, then v1alpha."""
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    errors = []
    for method in REFLECTION_METHODS:
        call = channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        try:
            responses = list(call(iter([request]), timeout=10))
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            errors.append(f"{method}: {error.details()}")
            continue
        return [service.name for response in responses for service in response.list_services_response.service]
    raise AssertionError(f"the hub serves no reflection protocol: {errors}")


def test_list_and_call_tools(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    with open_channel(bulkhead.socket) as channel:
        listed = agent(channel).ListTools(hub_pb2.ListToolsRequest(app="notes"), timeout=30)
        arguments = json.dumps({"title": "grpc", "body": "sent from Python"})
        request = hub_pb2.CallToolRequest(app="notes", tool="add_note", arguments_json=arguments)
        called = agent(channel).CallTool(request, timeout=30)

    names = {tool.name for tool in listed.tools}
    assert {"add_note", "list_notes", "search_notes"} <= names
    assert all(tool.app == "notes" for tool in listed.tools)
    add_note = next(tool for tool in listed.tools if tool.name == "add_note")
    schema = json.loads(add_note.input_schema_json)
    assert {"title", "body"} <= set(schema["properties"])
    assert not called.is_error
    assert called.text == "added note 1: grpc"
    result = json.loads(called.result_json)
    assert result["content"][0] == {"type": "text", "text": "added note 1: grpc"}


def test_unknown_app_is_not_found(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    with open_channel(bulkhead.socket) as channel:
        request = hub_pb2.CallToolRequest(app="nosuchapp", tool="add_note", arguments_json="{}")
        try:
            agent(channel).CallTool(request, timeout=30)
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
        else:
            raise AssertionError("CallTool on an unknown app succeeded")

    assert code == grpc.StatusCode.NOT_FOUND
    assert "nosuchapp" in details


def test_operator_status_and_apps(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    with open_channel(bulkhead.socket) as channel:
        status = operator(channel).GetStatus(hub_pb2.GetStatusRequest(), timeout=10)
        apps = agent(channel).ListApps(hub_pb2.ListAppsRequest(), timeout=10)

    assert status.apps == 1
    assert status.manifest_problems == 0
    assert status.socket == str(bulkhead.socket)
    assert [app.name for app in apps.apps] == ["notes"]
    assert apps.apps[0].manifest_path == str(bulkhead.apps_dir / "notes.toml")


def test_health_check_serving(hub):
    bulkhead = hub({})

    with open_channel(bulkhead.socket) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)

    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(hub):
    bulkhead = hub({})

    with open_channel(bulkhead.socket) as channel:
        services = reflected_services(channel)

    assert "bulkhead.v1.AgentService" in services
    assert "bulkhead.v1.OperatorService" in services
    assert "bulkhead.v1.ApprovalService" in services
