// The dashboard's way to the data: one gRPC-web client (binary framing) generated from the service's proto,
// the summary call, and the plain-language reading of every way a call can fail.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-grpc";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";

import { AuditService } from "./gen/avnology/audit/v1/audit_pb";
import type { Counts } from "./rows";
import type { Claims } from "./token";
import type { Range } from "./week";
import { formatLocal, formatUtc } from "./format";

/** Long enough for a summary over a busy year, short enough that a hung server is reported. */
export const CALL_TIMEOUT_MS = 20_000;

/**
 * The service answers every gRPC-web call with HTTP 200 (errors in the trailer frame); anything else comes from
 * something in front of it (a proxy's 502/503 page), whose body is not gRPC-web. Reading the status before the
 * body keeps such an answer from surfacing as a framing error.
 */
async function fetchGrpcWeb(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const response = await globalThis.fetch(input, init);
  if (response.status < 200 || response.status > 299) {
    await response.body?.cancel();
    throw new ConnectError(
      `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`,
      codeFromHttpStatus(response.status),
    );
  }
  return response;
}

// Same origin: the page is served by the service it queries, so no CORS and no configured base URL.
export const client = createClient(
  AuditService,
  createGrpcWebTransport({ baseUrl: globalThis.location?.origin ?? "", useBinaryFormat: true, fetch: fetchGrpcWeb }),
);

/** One week's counts per action. */
export async function weekSummary(
  range: Range,
  organization: string,
  token: string,
  signal: AbortSignal,
): Promise<Map<string, Counts>> {
  const response = await client.getEventsSummary(
    { startTime: timestampFromDate(range.start), endTime: timestampFromDate(range.end), organizationId: organization },
    { headers: { authorization: `Bearer ${token}` }, signal, timeoutMs: CALL_TIMEOUT_MS },
  );
  return new Map(response.buckets.map((b) => [b.action, { count: b.count, failures: b.failureCount }]));
}

export interface Explained {
  /** One line a person understands, with the HTTP/gRPC names an operator searches for. */
  title: string;
  /** What to do about it, and the server's own words. */
  detail: string;
  /** The gRPC status name, for tests and for reporting the problem. */
  code: string;
}

/** Reads a failed call as the viewer needs it: what went wrong, and what to do. */
export function explain(error: unknown, context: { organization: string; claims?: Claims }): Explained {
  const failure = ConnectError.from(error);
  const said = failure.rawMessage ? `The service said: “${failure.rawMessage}”.` : "";
  const { organization, claims } = context;
  switch (failure.code) {
    case Code.Unauthenticated: {
      const expired = claims?.expiresAt && claims.expiresAt.getTime() <= Date.now();
      const when = claims?.expiresAt ? `${formatLocal(claims.expiresAt)} (${formatUtc(claims.expiresAt)})` : "";
      return {
        code: "UNAUTHENTICATED",
        title: expired
          ? "The token has expired (401 UNAUTHENTICATED)"
          : "The token was not accepted (401 UNAUTHENTICATED)",
        detail: [
          expired ? `It expired ${when}.` : "It is malformed, signed with another key, or expired.",
          said,
          "Paste a fresh token with the audit:read scope (for example from “audit-service token --scope audit:read”).",
        ]
          .filter(Boolean)
          .join(" "),
      };
    }
    case Code.PermissionDenied: {
      const otherOrg = claims?.organization && organization && organization !== claims.organization;
      const lacksScope = claims && !claims.scopes.includes("audit:read");
      return {
        code: "PERMISSION_DENIED",
        title: otherOrg
          ? `This token may not read organization “${organization}” (403 PERMISSION_DENIED)`
          : "This token is not allowed to read audit events (403 PERMISSION_DENIED)",
        detail: [
          otherOrg
            ? `It is confined to organization “${claims?.organization}”: leave the organization empty or use a platform-wide token.`
            : lacksScope
              ? "It lacks the audit:read scope."
              : "",
          said,
        ]
          .filter(Boolean)
          .join(" "),
      };
    }
    case Code.NotFound:
      return {
        code: "NOT_FOUND",
        title: "No such event (404 NOT_FOUND)",
        detail: `It does not exist in this organization, or this token may not see it. ${said}`.trim(),
      };
    case Code.Unavailable:
      return {
        code: "UNAVAILABLE",
        title: "The audit service is unavailable (503 UNAVAILABLE)",
        detail: `Its database is not answering or it is overloaded; try again in a moment. ${said}`.trim(),
      };
    case Code.DeadlineExceeded:
      return {
        code: "DEADLINE_EXCEEDED",
        title: "The audit service did not answer in time (504 DEADLINE_EXCEEDED)",
        detail: `Try again, or a shorter range. ${said}`.trim(),
      };
    case Code.ResourceExhausted:
      return {
        code: "RESOURCE_EXHAUSTED",
        title: "Too many requests (429 RESOURCE_EXHAUSTED)",
        detail: `Wait a moment before refreshing. ${said}`.trim(),
      };
    case Code.InvalidArgument:
      return {
        code: "INVALID_ARGUMENT",
        title: "The service refused the request (400 INVALID_ARGUMENT)",
        detail: said || "Check the week and the organization.",
      };
    default: {
      // fetch() itself failed: no answer at all (server down, network gone), not an answer with an error.
      if (failure.cause instanceof TypeError) {
        return {
          code: "UNAVAILABLE",
          title: "The audit service cannot be reached",
          detail: `No answer from ${globalThis.location?.origin ?? "the server"}: is it running? (${failure.cause.message})`,
        };
      }
      const name = Code[failure.code]?.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() ?? String(failure.code);
      return { code: name, title: `The call failed (${name})`, detail: said || failure.message };
    }
  }
}
