"""Probing the download hosts of a TFDS dataset, so that `load_tfds` fails within seconds offline
instead of after TFDS's downloader has retried for minutes (see `vae.data.tfds_source`)."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse

PROBE_TIMEOUT_S = 3.0
# Probed when a builder records no download URLs (most TFDS data is hosted there).
FALLBACK_DOWNLOAD_HOST = "https://storage.googleapis.com/"
_MAX_PROBED_HOSTS = 8


def _download_urls(builder) -> list[str]:
    try:
        urls = list(builder.url_infos or ())
    except Exception:  # a missing or malformed checksums file
        urls = []
    return urls or [FALLBACK_DOWNLOAD_HOST]


def _probe(url: str, timeout: float) -> str | None:
    """None when url's server answers the way TFDS's downloader would not retry, else why not.

    An HTTP HEAD without retries, through the environment's proxy like TFDS's requests session.
    Any answer below 500 counts (a 404 fails TFDS's download at once, not after retries); a
    connection error, a timeout or a 5xx is what TFDS retries for 204 s.
    """
    parts = urllib.parse.urlsplit(url)
    try:
        if parts.scheme in ("http", "https"):
            import requests

            response = requests.head(url, timeout=timeout, allow_redirects=False)
            response.close()
            if response.status_code >= 500:
                return f"HTTP {response.status_code}"
        else:
            port = parts.port or {"ftp": 21}.get(parts.scheme, 443)
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                pass
    except Exception as err:  # requests.RequestException, OSError, ...
        return _why(err)
    return None


def _why(err: Exception) -> str:
    text = str(err)
    for pattern, reason in (
        (r"NameResolution|Failed to resolve|Name or service not known|nodename nor servname|getaddrinfo",
         "cannot resolve the host name"),
        (r"Connection refused", "connection refused"),
        (r"timed out|Timeout", "timed out"),
        (r"SSL|CERTIFICATE", "TLS error"),
        (r"Network is unreachable|No route to host", "network unreachable"),
    ):
        if re.search(pattern, text) or re.search(pattern, type(err).__name__):
            return reason
    return f"{type(err).__name__}: {_first_lines(text, 160)}"


def _unreachable_hosts(urls: list[str], timeout: float = PROBE_TIMEOUT_S) -> list[str]:
    """The hosts of urls whose server does not answer within about timeout seconds.

    One URL per scheme://host:port, probed in parallel daemon threads that are abandoned at
    the deadline (requests' timeout does not cover name resolution).
    """
    per_host: dict[str, str] = {}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            per_host.setdefault(f"{parts.scheme}://{parts.netloc}", url)
    targets = list(per_host.items())[:_MAX_PROBED_HOSTS]
    results: dict[str, str | None] = {}

    def run(host: str, url: str):
        results[host] = _probe(url, timeout)

    threads = [threading.Thread(target=run, args=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    bad = []
    for host, _ in targets:
        if host not in results:
            bad.append(f"{host} (no answer within {timeout:g} s)")
        elif results[host] is not None:
            bad.append(f"{host} ({results[host]})")
    return bad


def _first_lines(text: str, limit: int = 400) -> str:
    text = " ".join(line.strip() for line in text.strip().splitlines()[:4])
    return text if len(text) <= limit else text[: limit - 3] + "..."
