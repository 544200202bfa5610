"""Against a real provd (no lab): mutual TLS, roles, typed errors with field
violations, operations streamed and failed."""

from __future__ import annotations

import hashlib
import socket
import ssl
import uuid
from pathlib import Path

import grpc
import pytest

import provd
from provd import errors
from provd.v1 import agent_pb2, configuration_pb2, operations_pb2

from harness import Daemon, make_pki


def test_get_agent(daemon: Daemon) -> None:
    with daemon.client("viewer") as client:
        agent = client.agent()
    assert isinstance(agent, agent_pb2.GetAgentResponse)
    # On Linux provd has no host backend and says why.
    if not agent.host_available:
        assert agent.host_unavailable_reason
        assert not agent.installed


def test_an_https_endpoint_and_a_server_name_work(daemon: Daemon) -> None:
    with provd.Client(
        f"https://127.0.0.1:{daemon.port}",
        ca=daemon.pki / "ca.pem",
        cert=daemon.pki / "client-viewer.pem",
        key=daemon.pki / "client-viewer.key",
        server_name="localhost",
    ) as client:
        client.agent()


def test_a_client_without_a_certificate_is_refused_in_the_handshake(daemon: Daemon) -> None:
    # gRPC: a channel that trusts provd's CA but presents no certificate.
    credentials = grpc.ssl_channel_credentials(root_certificates=(daemon.pki / "ca.pem").read_bytes())
    with grpc.secure_channel(daemon.endpoint, credentials) as channel:
        stub = provd.client.agent_pb2_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetAgent(agent_pb2.GetAgentRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # TLS itself: the server answers the first record with the TLS 1.3
    # "certificate required" alert; nothing of HTTP/2 is ever read.
    context = ssl.create_default_context(cafile=str(daemon.pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            with pytest.raises((ssl.SSLError, ConnectionResetError)) as refused:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                data = tls.recv(1024)
                assert data == b"", data  # EOF is a refusal too
                raise ConnectionResetError("closed")
    assert "certificate required" in str(refused.value).lower() or isinstance(
        refused.value, ConnectionResetError
    )


def test_a_certificate_from_another_ca_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    client = provd.Client(
        daemon.endpoint,
        ca=daemon.pki / "ca.pem",
        cert=other / "client-admin.pem",
        key=other / "client-admin.key",
    )
    with client, pytest.raises(errors.Unavailable):
        client.agent()


def test_the_server_certificate_is_verified(daemon: Daemon) -> None:
    client = daemon.client("admin", server_name="not-the-server.example.test")
    with client, pytest.raises(errors.Unavailable):
        client.agent()


BAD_DOMAIN = configuration_pb2.DesiredState(domains=[configuration_pb2.DomainSpec(domain="not a domain")])


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_may_apply(daemon: Daemon, role: str) -> None:
    with daemon.client(role) as client, pytest.raises(errors.PermissionDenied) as caught:
        client.apply(BAD_DOMAIN)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "ApplyConfiguration" in caught.value.message
    assert role in caught.value.message
    # The same document gets past the role check for an admin (and is then
    # refused for what it says, which is the next test's subject).
    with daemon.client("admin") as admin, pytest.raises(errors.InvalidArgument):
        admin.apply(BAD_DOMAIN)


def test_a_viewer_may_plan_and_read(daemon: Daemon) -> None:
    with daemon.client("viewer") as client:
        with pytest.raises(errors.InvalidArgument):  # past the role check
            client.plan(BAD_DOMAIN)
        client.list_operations()


def test_invalid_argument_names_the_fields(daemon: Daemon, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[domains]]\ndomain = "not a domain"\n\n[[domains]]\ndomain = "ok.example.test"\n'
        'preferred_domain_controllers = ["bad name!"]\n'
    )
    with daemon.client("admin") as client, pytest.raises(errors.InvalidArgument) as caught:
        client.apply(provd.load_document(path), request_id="py-bad-fields")
    error = caught.value
    assert error.fields == [
        "desired.domains[0].domain",
        "desired.domains[1].preferred_domain_controllers[0]",
        "credential",
    ], error
    assert all(v.description for v in error.field_violations)
    # Decoded from grpc-status-details-bin, and in str() for a person.
    from google.rpc import error_details_pb2

    assert any(isinstance(d, error_details_pb2.BadRequest) for d in error.details)
    text = str(error)
    assert text.startswith("INVALID_ARGUMENT: ")
    assert "field desired.domains[0].domain: must be a DNS name" in text
    assert error.to_dict()["field_violations"][0]["field"] == "desired.domains[0].domain"


def test_request_fields_are_checked_too(daemon: Daemon) -> None:
    with daemon.client("admin") as client:
        with pytest.raises(errors.InvalidArgument) as caught:
            client.apply(BAD_DOMAIN, request_id="not allowed: spaces")
        assert "request_id" in caught.value.fields
        with pytest.raises(errors.InvalidArgument):
            client.get_operation("not-an-id")
        with pytest.raises(errors.NotFound):
            client.get_operation(str(uuid.uuid4()))


def test_an_operation_is_watched_to_its_end_and_a_failure_is_typed(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Install of a local package: fetched and verified, then refused at the
    installer step on a host without the Windows backend (Linux). No network."""
    package = tmp_path / "agent.msi"
    package.write_bytes(b"not really an MSI")
    request = agent_pb2.InstallRequest(
        source=package.as_uri(),
        sha256=hashlib.sha256(package.read_bytes()).hexdigest(),
        accept_license=True,
        skip_registration=True,
        request_id=f"py-install-{uuid.uuid4().hex[:8]}",
    )
    with daemon.client("admin") as admin, daemon.client("viewer") as viewer:
        agent = viewer.agent()
        if agent.host_available:
            pytest.skip("this host has the Windows host backend")
        op = admin.call(admin.stubs.agent.Install, request).operation
        assert op.kind == operations_pb2.OPERATION_KIND_INSTALL
        # The same request id names the same operation.
        again = admin.call(admin.stubs.agent.Install, request).operation
        assert again.id == op.id

        events: list[operations_pb2.OperationEvent] = []
        with pytest.raises(errors.OperationFailed) as caught:
            viewer.wait(op, on_event=events.append, timeout=60)  # a viewer may watch
        failed = caught.value
        assert failed.state == "FAILED"
        assert failed.code == grpc.StatusCode.FAILED_PRECONDITION
        assert failed.step == "install-package"
        assert failed.operation.id == op.id
        # Every event, in order, once.
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert len(events) == failed.operation.event_count
        steps = [e.step for e in events if e.kind == operations_pb2.EVENT_KIND_STEP_STARTED]
        assert steps[:2] == ["fetch-package", "verify-package"], steps
        assert steps[-1] == "install-package", steps
        # Watching a finished operation replays and ends at once; resuming
        # after a sequence replays only what follows.
        replay: list[operations_pb2.OperationEvent] = []
        final = viewer.watch(op.id, replay.append)
        assert final.state == operations_pb2.OPERATION_STATE_FAILED
        assert [e.sequence for e in replay] == [e.sequence for e in events]
        tail: list[operations_pb2.OperationEvent] = []
        viewer.watch(op.id, tail.append, after_sequence=len(events) - 2)
        assert [e.sequence for e in tail] == [len(events) - 1, len(events)]
        assert provd.operation_to_dict(final)["error"]["step"] == "install-package"
        listed = viewer.list_operations(kind=operations_pb2.OPERATION_KIND_INSTALL)
        assert op.id in [o.id for o in listed]
