// The bearer token: kept only in this tab's sessionStorage (gone when the tab closes, never sent to another
// tab or written to disk by the page), and read - not verified - to tell the viewer what it allows.

const TOKEN_KEY = "audit-dashboard.token";
/** Set when the stored token is the demo server's, so a restarted demo's fresh token may replace it. */
const DEMO_KEY = "audit-dashboard.token-is-demo";

export interface Claims {
  subject?: string;
  scopes: string[];
  organization?: string;
  expiresAt?: Date;
}

export function storedToken(): { token: string; demo: boolean } | undefined {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { token, demo: sessionStorage.getItem(DEMO_KEY) === "1" } : undefined;
  } catch {
    // Storage can be disabled by the browser; the field still works for this page view.
    return undefined;
  }
}

export function storeToken(token: string, demo: boolean): void {
  try {
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      if (demo) sessionStorage.setItem(DEMO_KEY, "1");
      else sessionStorage.removeItem(DEMO_KEY);
    } else {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(DEMO_KEY);
    }
  } catch {
    // See storedToken.
  }
}

/** The demo server's read-only token; the route exists only in `--demo` mode (404 otherwise). */
export async function fetchDemoToken(): Promise<string | undefined> {
  try {
    const response = await fetch("/demo-token", { cache: "no-store", headers: { accept: "application/json" } });
    if (!response.ok) return undefined;
    const body: unknown = await response.json();
    const token = (body as { token?: unknown }).token;
    return typeof token === "string" && token ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The claims of a JWT, read without verification (the server verifies); undefined when it is not a JWT. */
export function readClaims(token: string): Claims | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as Record<string, unknown>;
    const scopes = new Set<string>();
    if (typeof claims.scope === "string") claims.scope.split(/\s+/).filter(Boolean).forEach((s) => scopes.add(s));
    if (Array.isArray(claims.scp)) claims.scp.filter((s) => typeof s === "string").forEach((s) => scopes.add(s));
    return {
      subject: typeof claims.sub === "string" ? claims.sub : undefined,
      scopes: [...scopes],
      organization: typeof claims.org_id === "string" && claims.org_id ? claims.org_id : undefined,
      expiresAt: typeof claims.exp === "number" ? new Date(claims.exp * 1000) : undefined,
    };
  } catch {
    return undefined;
  }
}
