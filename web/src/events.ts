// The drill-down's calls: ListEvents and GetEvent over gRPC-web, the filter a week of one action stands for,
// and the API's own words about a filter it refused (the BadRequest violation on `filter`, which names the
// position).

import { ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

import { CALL_TIMEOUT_MS, client } from "./api";
import type { AuditEvent } from "./gen/avnology/audit/v1/audit_pb";
import type { Range } from "./week";

export type { AuditEvent };

/** A page a person scrolls through without waiting; the API allows up to 500. */
export const PAGE_SIZE = 50;

export interface EventPage {
  events: AuditEvent[];
  /** Empty on the last page. */
  next: string;
}

export async function listEvents(
  query: { filter: string; organization: string; pageToken: string },
  token: string,
  signal: AbortSignal,
): Promise<EventPage> {
  const response = await client.listEvents(
    { filter: query.filter, organizationId: query.organization, pageToken: query.pageToken, pageSize: PAGE_SIZE },
    { headers: { authorization: `Bearer ${token}` }, signal, timeoutMs: CALL_TIMEOUT_MS },
  );
  return { events: response.events, next: response.nextPageToken };
}

export async function getEvent(id: string, organization: string, token: string, signal: AbortSignal): Promise<AuditEvent> {
  return client.getEvent(
    { id, organizationId: organization },
    { headers: { authorization: `Bearer ${token}` }, signal, timeoutMs: CALL_TIMEOUT_MS },
  );
}

/** A string value of the filter language: double-quoted, with `\` and `"` escaped. */
export function quoted(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The events one cell of the summary counts: that action, from the week's first instant to just before its end. */
export function actionFilter(action: string, range: Range): string {
  return [
    `action = ${quoted(action)}`,
    `timestamp >= ${quoted(range.start.toISOString())}`,
    `timestamp < ${quoted(range.end.toISOString())}`,
  ].join(" AND ");
}

/** `2026-04-17T12:34:56.789Z`, to the nanosecond the event was stored with (trailing zeros dropped by threes). */
export function exactTime(timestamp: Timestamp | undefined): string {
  if (!timestamp) return "";
  const whole = timestampDate({ ...timestamp, nanos: 0 }).toISOString().slice(0, 19);
  let fraction = String(timestamp.nanos).padStart(9, "0");
  while (fraction.endsWith("000")) fraction = fraction.slice(0, -3);
  return `${whole}${fraction ? `.${fraction}` : ""}Z`;
}

/** The description the API gave for a refused `filter`, or undefined when the failure was about something else. */
export function filterViolation(error: unknown): string | undefined {
  const failure = ConnectError.from(error);
  for (const detail of failure.details) {
    // Details read off the wire are type names and bytes; the other kind is what a server would send.
    if ("desc" in detail || detail.type !== "google.rpc.BadRequest" || !(detail.value instanceof Uint8Array)) continue;
    for (const violation of badRequestViolations(detail.value)) {
      if (violation.field === "filter") return violation.description;
    }
  }
  return undefined;
}

/**
 * `google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }` with
 * `FieldViolation { string field = 1; string description = 2; }`, read off the wire: two fields of one message
 * do not justify generating and bundling the googleapis error protos.
 */
function badRequestViolations(bytes: Uint8Array): { field: string; description: string }[] {
  const violations = [];
  const outer = new BinaryReader(bytes);
  while (outer.pos < outer.len) {
    const [number, wireType] = outer.tag();
    if (number !== 1 || wireType !== WireType.LengthDelimited) {
      outer.skip(wireType, number);
      continue;
    }
    const inner = new BinaryReader(outer.bytes());
    const violation = { field: "", description: "" };
    while (inner.pos < inner.len) {
      const [field, type] = inner.tag();
      if (field === 1 && type === WireType.LengthDelimited) violation.field = inner.string();
      else if (field === 2 && type === WireType.LengthDelimited) violation.description = inner.string();
      else inner.skip(type, field);
    }
    violations.push(violation);
  }
  return violations;
}

/** The 0-based character position the API's filter error names (`at position 14: …`), as a UTF-16 offset. */
export function errorOffset(description: string, filter: string): number | undefined {
  const match = /\bposition (\d+)\b/.exec(description);
  if (!match) return undefined;
  // The API counts characters (code points); an input's selection counts UTF-16 units.
  return [...filter].slice(0, Number(match[1])).join("").length;
}
