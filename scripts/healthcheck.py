"""Health check of the web container (docker-compose.yml): GET /healthz/ from the gunicorn on
this host over plain http, as a load balancer does. Exit status 0 when it answers 200.

The request carries a Host header the app accepts (the first of ALLOWED_HOSTS): with
ALLOWED_HOSTS set to the public name only, "127.0.0.1" would be refused with a 400. A redirect
is a failure, not followed: /healthz/ is exempt from the https redirect (settings.py)."""

import http.client
import os
import sys


def host_header() -> str:
    hosts = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",")]
    # ".example.com" allows example.com itself; "*" allows anything.
    return next((host.lstrip(".") for host in hosts if host and host != "*"), "localhost")


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz/", headers={"Host": host_header()})
        response = connection.getresponse()
    except OSError as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if response.status != 200:
        print(f"unhealthy: /healthz/ answered {response.status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
