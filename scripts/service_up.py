"""Exit 0 when the service at the URL (postgres://, redis://) accepts a TCP connection."""

import socket
import sys
from urllib.parse import urlsplit

url = urlsplit(sys.argv[1])
default_port = {"postgres": 5432, "postgresql": 5432, "redis": 6379}.get(url.scheme, 0)
try:
    socket.create_connection((url.hostname or "127.0.0.1", url.port or default_port), timeout=1).close()
except OSError:
    sys.exit(1)
