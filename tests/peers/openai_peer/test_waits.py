"""FakeOpenAI's delayed and dripping replies: a client that gives up is noticed, close() never waits on a
reply, and each request says when it arrived."""

import threading
import time

import openai
import pytest

from tests.peers.openai_peer.conftest import CLIENT_TIMEOUT, ask, send_raw_chat_request
from tests.peers.openai_server import FakeOpenAI, Recorded, Reply


def test_a_hang_reply_is_ended_by_the_client_timeout_and_close_returns_within_a_second() -> None:
    llm = FakeOpenAI()
    try:
        llm.enqueue(Reply.hang(30))
        with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                ask(client)
            assert time.monotonic() - started < 3.0
        llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
    finally:
        started = time.monotonic()
        llm.close()
        closing_took = time.monotonic() - started
    assert closing_took < 1.0
    assert llm.closed


def test_close_interrupts_a_delayed_reply_while_the_client_still_waits(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.hang(30))
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as client:
        llm_closed_at: list[float] = []

        def close_once_request_arrives() -> None:
            llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
            llm.close()
            llm_closed_at.append(time.monotonic())

        closer = threading.Thread(target=close_once_request_arrives, daemon=True)
        closer.start()
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError):
            ask(client)
        closer.join(timeout=CLIENT_TIMEOUT)
    assert llm_closed_at, "close() did not return"
    assert llm_closed_at[0] - started < 1.0


def test_a_client_that_hangs_up_during_a_delay_is_counted_as_abandoned_and_gets_no_reply(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.hang(5, content="too late"))
    sock = send_raw_chat_request(llm)
    try:
        llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
    finally:
        sock.close()

    started = time.monotonic()
    assert llm.wait_for_abandoned(1, timeout=CLIENT_TIMEOUT) == 1
    assert time.monotonic() - started < 1.0
    assert llm.abandoned == 1
    assert llm.pending == 0  # the reply was taken for the request, then dropped


def test_a_client_timeout_during_a_delay_abandons_the_request(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.hang(5))
    with (
        openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=0.2) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        ask(client)

    assert llm.wait_for_abandoned(1, timeout=CLIENT_TIMEOUT) == 1


def test_a_delay_that_runs_out_is_answered_and_not_counted_as_abandoned(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.hang(0.1, content="late but here"))

    assert ask(client) == "late but here"
    assert llm.abandoned == 0
    with pytest.raises(TimeoutError):
        llm.wait_for_abandoned(1, timeout=0.05)


def test_close_during_a_delay_drops_the_connection_but_is_not_counted_as_abandoned() -> None:
    llm = FakeOpenAI()
    try:
        llm.enqueue(Reply.hang(5))
        sock = send_raw_chat_request(llm)
        with sock:
            llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
            llm.close()  # joins the handler, so its outcome is settled on return
            assert sock.recv(1024) == b""  # dropped without an answer
    finally:
        llm.close()
    assert llm.abandoned == 0


def test_reset_clears_the_abandoned_count(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.hang(5))
    send_raw_chat_request(llm).close()
    llm.wait_for_abandoned(1, timeout=CLIENT_TIMEOUT)

    llm.reset()

    assert llm.abandoned == 0


def test_received_at_shows_how_long_the_client_waited_between_requests(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.hang(0.1, content="first"), Reply.text("second"))

    before = time.monotonic()
    assert [ask(client), ask(client)] == ["first", "second"]
    after = time.monotonic()

    first, second = llm.chat_requests
    assert before <= first.received_at <= second.received_at <= after
    assert second.received_at - first.received_at >= 0.1  # the first reply was delayed that long
    assert Recorded(method="GET", path="/", headers={}, json=None, body=b"").received_at >= after


def test_a_two_megabyte_reply_arrives_whole_and_the_connection_stays_usable(
    llm: FakeOpenAI, client: openai.OpenAI
) -> None:
    big = "".join(f"step {i:07d}\n" for i in range(2_000_000 // 13 + 1))
    assert len(big) >= 2_000_000
    llm.enqueue(Reply.text(big), Reply.text("small"))

    assert ask(client) == big
    assert ask(client) == "small"
    assert llm.connections_accepted == 1
