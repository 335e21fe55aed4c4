// A host we did not write: the official TypeScript SDK client starts planner-mcp over stdio, discovers its
// tools, calls one and a forbidden one, and prints what it saw as one JSON object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "ignore" });
const client = new Client({ name: "planner-mcp-ts-test", version: "1.0.0" });
await client.connect(transport);
const listed = await client.listTools();
const docs = await client.callTool({ name: "read_docs", arguments: { name: "backup-restore" } });
const refused = await client.callTool({ name: "execute_shell", arguments: { command: "id" } });
console.log(JSON.stringify({
  protocol: transport.protocolVersion ?? null,
  tools: listed.tools.map((t) => ({ name: t.name, readOnly: t.annotations?.readOnlyHint ?? null })),
  docs: { isError: docs.isError ?? false, output: docs.structuredContent },
  refused: { isError: refused.isError ?? false, output: refused.structuredContent },
}));
await client.close();
