"""An HTTP JSON-RPC endpoint in front of the in-process EVM, so `ledger-chain` can run as a
separate process against it exactly as against a real node. Test infrastructure only."""

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from web3 import Web3

REQUEST_SIZE_MAX = 1 << 20


def _jsonable(value):
    """Bytes become hex strings and web3's attribute dictionaries plain objects, as on the wire."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot send {type(value).__name__} over JSON-RPC")


@contextlib.contextmanager
def json_rpc_node(w3: Web3) -> Iterator[str]:
    """Serves w3's provider on a loopback port; yields the URL."""
    lock = threading.Lock()  # the tester is not made for concurrent use
    # The provider's own middleware turns wire-format params (camelCase, hex) into what the
    # tester takes, and its results back into wire format, as a node would.
    make_request = w3.provider.request_func(w3, w3.middleware_onion)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", 0)), REQUEST_SIZE_MAX)
            request = json.loads(self.rfile.read(length))
            with lock:
                response = dict(make_request(request["method"], request["params"]))
            response.update(jsonrpc="2.0", id=request.get("id"))
            body = json.dumps(response, default=_jsonable).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            """Quiet: the test's output is about the ledger."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
