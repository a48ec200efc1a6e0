//! Demo mode: realistic events for a few organizations over the last weeks, and
//! the ready-to-paste commands that show a newcomer the service answering.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::EventBatch;
use crate::proto::audit as pb;
use crate::store::DynStore;

pub const ORGANIZATIONS: [&str; 3] = ["org_acme", "org_globex", "org_initech"];
const WEEKS: i64 = 5;
const EVENTS_PER_ORG_PER_DAY: [u32; 3] = [900, 450, 120];
/// Actions with relative frequency and failure rate: logins dominate, admin
/// changes are rare, failures cluster on authentication.
const ACTIONS: [(&str, u32, f64); 12] = [
    ("session.login", 400, 0.04),
    ("session.logout", 250, 0.0),
    ("session.refreshed", 180, 0.01),
    ("user.password.changed", 25, 0.05),
    ("user.mfa.enrolled", 12, 0.08),
    ("user.created", 20, 0.02),
    ("user.deleted", 4, 0.0),
    ("oauth.token.issued", 300, 0.02),
    ("oauth.client.created", 3, 0.0),
    ("role.assigned", 10, 0.0),
    ("api_key.created", 5, 0.0),
    ("api_key.revoked", 2, 0.0),
];

/// Seeds the demo data when the database holds no event yet; returns how many
/// events were added.
pub async fn seed_if_empty(store: &DynStore) -> anyhow::Result<usize> {
    if !store.is_empty().await? {
        return Ok(0);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let start = now - WEEKS * 7 * 86_400;
    let mut rng = StdRng::seed_from_u64(7);
    let total_weight: u32 = ACTIONS.iter().map(|a| a.1).sum();
    let mut events = Vec::new();
    for (org_index, org) in ORGANIZATIONS.iter().enumerate() {
        for day in 0..WEEKS * 7 {
            // Weekends are quieter, and activity grows a little week over week.
            let weekday = (start / 86_400 + day + 4) % 7;
            let weekend = if weekday >= 5 { 0.35 } else { 1.0 };
            let growth = 1.0 + day as f64 / 150.0;
            let count = (f64::from(EVENTS_PER_ORG_PER_DAY[org_index]) * weekend * growth) as u32;
            for _ in 0..count {
                let mut pick = rng.random_range(0..total_weight);
                let &(action, _, failure_rate) = ACTIONS
                    .iter()
                    .find(|a| {
                        let hit = pick < a.1;
                        pick = pick.saturating_sub(a.1);
                        hit
                    })
                    .unwrap_or(&ACTIONS[0]);
                let seconds = start + day * 86_400 + rng.random_range(0..86_400);
                if seconds >= now {
                    continue;
                }
                let user = rng.random_range(1..200u32);
                events.push(pb::AuditEvent {
                    id: format!("demo-{org}-{}", events.len()),
                    timestamp: Some(pbjson_types::Timestamp { seconds, nanos: rng.random_range(0..1_000_000) * 1000 }),
                    organization_id: (*org).to_owned(),
                    action: action.to_owned(),
                    actor: Some(pb::Actor { r#type: "identity".into(), id: format!("usr_{org_index}{user:04}") }),
                    target: Some(pb::Target { r#type: "identity".into(), id: format!("usr_{org_index}{user:04}") }),
                    result: if rng.random_bool(failure_rate) { "failure" } else { "success" }.to_owned(),
                    ip: format!("203.0.113.{}", user % 250 + 1),
                    user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
                    details: None,
                    log_index: 0,
                });
            }
        }
    }
    let total = events.len();
    while !events.is_empty() {
        let rest = events.split_off(events.len().saturating_sub(crate::domain::MAX_BATCH_EVENTS));
        let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events: rest })?;
        store.append(&batch).await?;
    }
    Ok(total)
}

/// What a newcomer pastes next: a token, curl lines for the summary and the events behind
/// it, and a grpcurl line.
pub fn instructions(address: SocketAddr, secret: &[u8]) -> anyhow::Result<String> {
    let token = crate::auth::mint_hs256(secret, "demo-reader", &["audit:read"], None, Duration::from_secs(12 * 3600))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let end = crate::rfc3339::format(&pbjson_types::Timestamp { seconds: now - now % 3600 + 3600, nanos: 0 });
    let start =
        crate::rfc3339::format(&pbjson_types::Timestamp { seconds: now - now % 3600 + 3600 - 7 * 86_400, nanos: 0 });
    Ok(format!(
        "\naudit-service demo listening on http://{address}\n\n\
         dashboard (gRPC-web, token pre-filled for 2 hours):\n  http://{address}/\n\n\
         token (read-only, platform-wide, valid 12 hours):\n  export TOKEN={token}\n\n\
         REST:\n  curl -s -H \"Authorization: Bearer $TOKEN\" \\\n    'http://{address}/v1/audit/events:summary?start_time={start}&end_time={end}&organization_id=org_acme'\n\n\
         events behind the counts, newest first:\n  curl -s -G -H \"Authorization: Bearer $TOKEN\" 'http://{address}/v1/audit/events' \\\n    \
         -d organization_id=org_acme -d page_size=5 --data-urlencode 'filter=action = \"session.login\" AND result = \"failure\"'\n\n\
         gRPC:\n  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" \\\n    -d '{{\"start_time\":\"{start}\",\"end_time\":\"{end}\"}}' \\\n    {address} avnology.audit.v1.AuditService/GetEventsSummary\n"
    ))
}
