// server.ts — an MCP server (the official SDK's low-level Server) that offers
// the forkbox tools of tools.ts: tools/list answers their schemas, tools/call
// runs one and always answers a tool result (isError on failure). The caller
// connects it to a transport: stdio (forkbox mcp) or Streamable HTTP (/mcp).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { McpBackend } from './backend.js';
import { ForkboxTools, type ToolOptions } from './tools.js';

export const SERVER_NAME = 'forkbox';

const INSTRUCTIONS = 'forkbox runs untrusted code in isolated micro-VMs. Use run_code for a one-off program; use ' +
  'create_session, then exec_in_session, write_file, read_file and list_files for work that keeps state, and ' +
  'delete_session when done. A program that fails returns its exit code and stderr; only platform problems are tool errors.';

export interface McpServerOptions extends ToolOptions {
  version: string;
  /** Errors may carry full detail (stdio, one local user); the HTTP route hides 5xx detail. */
  local?: boolean;
}

export function createMcpServer(backend: McpBackend, opts: McpServerOptions): Server {
  const tools = new ForkboxTools(backend, opts, opts.local ?? false);
  const server = new Server({ name: SERVER_NAME, version: opts.version }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: tools.defs }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) =>
    tools.call(req.params.name, req.params.arguments, extra.signal));
  return server;
}
