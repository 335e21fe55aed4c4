"""Scraping the metrics listener as Prometheus would, over a plain socket, and reading the answer with the
Prometheus client's own parser: what these tests believe about a scrape is what Prometheus would read."""

import socket
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Answer", "Scrape", "exchange", "scrape"]

_WAIT_S = 10.0
"""The most one exchange may take in a test (the listener closes any connection after 5 s)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def exchange(address: tuple[str, int], request: bytes) -> Answer:
    """Send `request` whole, read the answer until the listener closes the connection."""
    with socket.create_connection(address, timeout=_WAIT_S) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(" ")[1]), headers, body)


class Scrape:
    """One scrape's families, parsed; `value(name, **labels)` is one sample's value (0 when there is none)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families: dict[str, Metric] = {family.name: family for family in text_string_to_metric_families(text)}

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (dict(sample.labels), sample.value)
            for family in self.families.values()
            for sample in family.samples
            if sample.name == name
        ]

    def value(self, name: str, **labels: str) -> float:
        found = [value for sample_labels, value in self.samples(name) if labels.items() <= sample_labels.items()]
        return sum(found)


def scrape(address: tuple[str, int]) -> Scrape:
    answer = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.status == 200, answer
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(answer.body.decode())
