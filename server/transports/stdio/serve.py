"""`planner-mcp serve` on stdio: until stdin closes or a SIGINT or SIGTERM comes (see `lifetime`), lines read and
written on the event loop (see `wire`), lines that are not JSON-RPC answered with a JSON-RPC error (see
`parse_errors`), and a cancel stopping only the request whose id it names exactly (see server.transports.cancels)."""

from mcp.server.stdio import stdio_server

from server.app import GovernedServer
from server.transports.cancels import exact_cancels
from server.transports.stdio.lifetime import serve_until_signalled
from server.transports.stdio.parse_errors import AnsweringParseErrors
from server.transports.stdio.wire import claimed_stdio

__all__ = ["serve_stdio"]


async def serve_stdio(server: GovernedServer) -> None:
    """Serve `server` on this process's stdin and stdout."""
    await serve_until_signalled(lambda: _serve(server))


async def _serve(server: GovernedServer) -> None:
    with claimed_stdio() as (stdin, stdout):
        async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
            await server.serve_streams(*exact_cancels(AnsweringParseErrors(read_stream, write_stream), write_stream))
