//! ListEvents page tokens: where a listing stands, sealed with HMAC-SHA256 under the
//! server's page token keys, so that a client carries it but cannot forge it, alter
//! it, or take it to another filter, organization or caller.
//!
//! Layout before base64url (no padding), integers big-endian:
//!
//! ```text
//! version u8 = 1 | key id [4] | issued at i64 (Unix seconds)
//! | cursor: timestamp i64 (ns), log_index u64, organization_id (u8 length + bytes)
//! | snapshot (u16 length + bytes) | SHA-256 of the canonical filter text [32]
//! | organization scope (u8: 0 every one, 1 one + u8 length + bytes)
//! | caller's tenancy (u8: 0 platform-wide, 1 one organization + u8 length + bytes)
//! | HMAC-SHA256 of everything before it [32]
//! ```
//!
//! The first key signs and every key verifies, so keys rotate across replicas without
//! breaking a listing: add the new key second everywhere, then move it first, then
//! drop the old one once the tokens it signed expired ([`TOKEN_LIFETIME`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::{Cursor, OrgId, OrgScope, Snapshot, UnixNanos};
use crate::error::Error;

#[cfg(test)]
mod tests;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const MAC_LEN: usize = 32;
/// Longest `page_token` read; longer is refused before it is decoded, and the
/// service's own tokens stay under it.
pub const MAX_PAGE_TOKEN_CHARS: usize = 4096;
/// Shortest key accepted: as long as the MAC.
pub const MIN_KEY_BYTES: usize = 32;
/// How long a token stays valid after its page was read (the contract asks for 24 h).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);
/// A token issued by a replica whose clock runs this far ahead is still taken.
const CLOCK_SKEW_SECS: i64 = 300;
/// Longest store snapshot a token carries, which keeps tokens under [`MAX_PAGE_TOKEN_CHARS`].
const MAX_SNAPSHOT_BYTES: usize = 2048;
/// The one answer to a token that does not verify, whatever is wrong with it, so a
/// prober learns nothing from which check failed.
const NOT_A_TOKEN: &str = "is not a valid page token of this service (altered, truncated or forged)";

/// The keys that sign (the first) and verify (all) page tokens.
#[derive(Clone)]
pub struct PageTokenKeys {
    keys: Arc<Vec<Key>>,
}

struct Key {
    id: [u8; KEY_ID_LEN],
    secret: Vec<u8>,
}

impl fmt::Debug for PageTokenKeys {
    /// Key ids only: the secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| hex(&k.id)).collect();
        f.debug_struct("PageTokenKeys").field("key_ids", &ids).finish()
    }
}

impl PageTokenKeys {
    /// Keys from configured secrets, in order; each at least [`MIN_KEY_BYTES`] long.
    /// Blank entries (a trailing comma) are skipped.
    pub fn from_secrets<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let secret = secret.as_ref().trim();
            if secret.is_empty() {
                continue;
            }
            if secret.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "page token key {} is {} bytes long; each key must be at least {MIN_KEY_BYTES} bytes",
                    index + 1,
                    secret.len()
                ));
            }
            keys.push(Key::new(secret.as_bytes().to_vec()));
        }
        if keys.is_empty() {
            return Err("no page token key given".into());
        }
        Ok(Self { keys: Arc::new(keys) })
    }

    /// One key made for this process: tokens die with it and no other replica takes them.
    pub fn random() -> Self {
        Self { keys: Arc::new(vec![Key::new(rand::random::<[u8; 32]>().to_vec())]) }
    }

    fn signing(&self) -> &Key {
        // from_secrets and random never build an empty list.
        &self.keys[0]
    }

    /// The token of the page after `position`, issued at `now` (Unix seconds).
    pub fn seal(&self, position: &Position, binding: &Binding<'_>, now: i64) -> Result<String, Error> {
        let snapshot = position.snapshot.0.as_bytes();
        if snapshot.len() > MAX_SNAPSHOT_BYTES {
            return Err(
                anyhow::anyhow!("store snapshot of {} bytes is too long for a page token", snapshot.len()).into()
            );
        }
        let key = self.signing();
        let mut body = Vec::with_capacity(128 + snapshot.len());
        body.push(VERSION);
        body.extend_from_slice(&key.id);
        body.extend_from_slice(&now.to_be_bytes());
        body.extend_from_slice(&position.cursor.timestamp.get().to_be_bytes());
        body.extend_from_slice(&position.cursor.log_index.to_be_bytes());
        push_short(&mut body, position.cursor.organization_id.as_str());
        body.extend_from_slice(&(snapshot.len() as u16).to_be_bytes());
        body.extend_from_slice(snapshot);
        binding.write(&mut body);
        let mac = key.mac(&body).finalize().into_bytes();
        body.extend_from_slice(&mac);
        Ok(URL_SAFE_NO_PAD.encode(body))
    }

    /// Where the listing stands, if `token` verifies under one of the keys, is bound to
    /// exactly `binding`, and has not expired at `now` (Unix seconds).
    pub fn open(&self, token: &str, binding: &Binding<'_>, now: i64) -> Result<Position, Error> {
        let invalid = |description: &str| Error::invalid("page_token", description);
        if token.len() > MAX_PAGE_TOKEN_CHARS {
            return Err(invalid(NOT_A_TOKEN));
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid(NOT_A_TOKEN))?;
        if raw.len() < 1 + KEY_ID_LEN + MAC_LEN || raw[0] != VERSION {
            return Err(invalid(NOT_A_TOKEN));
        }
        let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
        let key = self.keys.iter().find(|k| k.id == body[1..1 + KEY_ID_LEN]).ok_or_else(|| invalid(NOT_A_TOKEN))?;
        // Constant-time comparison: the time to refuse says nothing about the MAC.
        key.mac(body).verify_slice(mac).map_err(|_| invalid(NOT_A_TOKEN))?;
        let sealed = Sealed::read(&body[1 + KEY_ID_LEN..]).ok_or_else(|| invalid(NOT_A_TOKEN))?;
        if sealed.issued > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(invalid(NOT_A_TOKEN));
        }
        if now.saturating_sub(sealed.issued) > TOKEN_LIFETIME.as_secs() as i64 {
            return Err(invalid("expired: page tokens are valid for 48 hours; start the listing again"));
        }
        let mut expected = Vec::new();
        binding.write(&mut expected);
        if sealed.binding != expected.as_slice() {
            return Err(invalid(&format!("was issued for {}", binding.difference(sealed.binding))));
        }
        Ok(sealed.position)
    }
}

impl Key {
    fn new(secret: Vec<u8>) -> Self {
        let digest = Sha256::new().chain_update(b"audit-service page token key id\0").chain_update(&secret).finalize();
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self { id, secret }
    }

    fn mac(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(body);
        mac
    }
}

/// Where a listing stands: the last event of the page read, and the snapshot it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub cursor: Cursor,
    pub snapshot: Snapshot,
}

/// What a token is bound to besides its position: the same listing asked by the same kind of caller.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The filter's canonical text; empty for none.
    pub filter: &'a str,
    /// The organizations listed, after tenancy was applied.
    pub scope: &'a OrgScope,
    /// The caller's own organization, `None` for a platform-wide caller.
    pub tenancy: Option<&'a OrgId>,
}

impl Binding<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        self.write_filter(out);
        self.write_scope(out);
        match self.tenancy {
            None => out.push(0),
            Some(org) => {
                out.push(1);
                push_short(out, org.as_str());
            }
        }
    }

    fn write_filter(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Sha256::digest(self.filter.as_bytes()));
    }

    fn write_scope(&self, out: &mut Vec<u8>) {
        match self.scope {
            OrgScope::All => out.push(0),
            OrgScope::One(org) => {
                out.push(1);
                push_short(out, org.as_str());
            }
        }
    }

    /// What differs between this binding and a sealed one, for the caller to fix.
    fn difference(&self, sealed: &[u8]) -> &'static str {
        let mut prefix = Vec::new();
        self.write_filter(&mut prefix);
        if !sealed.starts_with(&prefix) {
            return "another filter; start the listing again without page_token";
        }
        self.write_scope(&mut prefix);
        if !sealed.starts_with(&prefix) {
            return "another organization_id; start the listing again without page_token";
        }
        "another caller; a page token is only valid for the caller that listed"
    }
}

/// A token's fields after its MAC verified.
struct Sealed<'a> {
    issued: i64,
    position: Position,
    binding: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// Reads everything after the version and key id; `None` when it does not parse.
    fn read(mut bytes: &'a [u8]) -> Option<Self> {
        let issued = i64::from_be_bytes(take(&mut bytes, 8)?.try_into().ok()?);
        let timestamp = i64::from_be_bytes(take(&mut bytes, 8)?.try_into().ok()?);
        let log_index = u64::from_be_bytes(take(&mut bytes, 8)?.try_into().ok()?);
        let org_len = usize::from(*take(&mut bytes, 1)?.first()?);
        let organization_id = OrgId::parse(std::str::from_utf8(take(&mut bytes, org_len)?).ok()?).ok()?;
        let snapshot_len = usize::from(u16::from_be_bytes(take(&mut bytes, 2)?.try_into().ok()?));
        let snapshot = std::str::from_utf8(take(&mut bytes, snapshot_len)?).ok()?.to_owned();
        let cursor = Cursor { timestamp: UnixNanos::from_nanos(timestamp), organization_id, log_index };
        Some(Self { issued, position: Position { cursor, snapshot: Snapshot(snapshot) }, binding: bytes })
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

/// An organization id (at most 128 bytes) with its length in one byte.
fn push_short(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
