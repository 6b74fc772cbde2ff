"""What the local cloud keeps of each invocation for the ops console: event, result, log lines."""

from __future__ import annotations

from localcloud import cloud as cloud_module


def test_each_invocation_keeps_its_event_result_and_lines_and_only_the_last_are_kept(cloud, monkeypatch):
    monkeypatch.setattr(cloud_module, "DETAILS_KEPT", 2)
    results = [cloud.fire("ops-test-tick") for _ in range(3)]
    entries = [j for j in cloud.journal() if j["function"] == "ops-test-tick"]
    assert len(entries) == 3
    assert cloud.details(entries[0]["request_id"]) is None  # dropped: only the last 2 are kept
    newest = cloud.details(entries[-1]["request_id"])
    assert newest["event"]["detail"] == {"job": "tick"}
    assert newest["result"] == results[-1]
    assert any('"ticked"' in line for line in newest["logs"])  # the handler's WARNING line
    assert newest["error"] is None


def test_a_failed_invocation_keeps_lambdas_error_payload(cloud):
    import pytest

    from localcloud import InvocationError

    with pytest.raises(InvocationError) as failed:
        cloud.fire("ops-test-nightly")
    details = cloud.details(failed.value.invocation.request_id)
    assert details["error"]["errorType"] == "ValueError"
    assert details["error"]["errorMessage"] == "ValueError: scheduled job failed"
