//! Realistic synthetic audit traffic: skewed organizations and actions, ~5 %
//! failures, spread over 30 days and delivered in time order, as producers send it.

use audit_service::proto::audit as pb;

use crate::recount::{Fact, Recount};

pub const DAYS: i64 = 30;
/// 2026-01-01T00:00:00Z: the data starts here, far from bucket-edge luck.
pub const EPOCH_S: i64 = 1_767_225_600;
pub const ORGS: usize = 1000;

pub const ACTIONS: [&str; 40] = [
    "session.login",
    "session.logout",
    "session.refreshed",
    "oauth.token.issued",
    "oauth.token.revoked",
    "oauth.client.created",
    "oauth.client.updated",
    "oauth.client.deleted",
    "user.created",
    "user.updated",
    "user.deleted",
    "user.password.changed",
    "user.password.reset_requested",
    "user.mfa.enrolled",
    "user.mfa.removed",
    "user.email.verified",
    "user.locked",
    "user.unlocked",
    "role.assigned",
    "role.revoked",
    "role.created",
    "role.deleted",
    "group.created",
    "group.member_added",
    "group.member_removed",
    "api_key.created",
    "api_key.revoked",
    "api_key.used",
    "organization.updated",
    "organization.domain_verified",
    "sso.connection.created",
    "sso.connection.updated",
    "sso.login",
    "scim.user.provisioned",
    "scim.user.deprovisioned",
    "webhook.created",
    "webhook.delivered",
    "policy.updated",
    "export.requested",
    "audit.exported",
];

/// xorshift64*: fast, deterministic, good enough for synthetic data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cumulative weights of a Zipf-like law with exponent `s` over `n` ranks.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    let mut cumulative: Vec<f64> = (1..=n)
        .map(|rank| {
            total += 1.0 / (rank as f64).powf(s);
            total
        })
        .collect();
    cumulative.iter_mut().for_each(|c| *c /= total);
    cumulative
}

fn pick(cumulative: &[f64], u: f64) -> usize {
    cumulative.partition_point(|&c| c < u).min(cumulative.len() - 1)
}

pub fn org_name(index: usize) -> String {
    format!("org_{index:04}")
}

/// Generates `total` events in time order, `batch` at a time, starting at event `offset`
/// of a stream of `stream_len` events spread evenly over the 30 days.
pub struct Generator {
    rng: Rng,
    orgs: Vec<f64>,
    actions: Vec<f64>,
    next: u64,
    stream_len: u64,
    id_prefix: String,
}

impl Generator {
    pub fn new(seed: u64, stream_len: u64, id_prefix: &str) -> Self {
        Self {
            rng: Rng::new(seed),
            orgs: zipf(ORGS, 1.1),
            actions: zipf(ACTIONS.len(), 1.3),
            next: 0,
            stream_len,
            id_prefix: id_prefix.to_owned(),
        }
    }

    pub fn batch(&mut self, size: usize) -> Vec<pb::AuditEvent> {
        (0..size).map(|_| self.event().0).collect()
    }

    /// A batch whose events are also written down in `recount`, to check summaries against.
    pub fn batch_counted(&mut self, size: usize, recount: &mut Recount) -> Vec<pb::AuditEvent> {
        (0..size)
            .map(|_| {
                let (event, fact) = self.event();
                recount.record(fact);
                event
            })
            .collect()
    }

    fn event(&mut self) -> (pb::AuditEvent, Fact) {
        let span_ns = (DAYS * 86_400 * 1_000_000_000) as u128;
        // Even spacing plus jitter keeps time order while landing at any nanosecond.
        let base = (u128::from(self.next) * span_ns / u128::from(self.stream_len)) as i64;
        let jitter = self.rng.below(1_000_000) as i64;
        let at_ns = EPOCH_S * 1_000_000_000 + base + jitter;
        let org = pick(&self.orgs, self.rng.unit());
        let action_index = pick(&self.actions, self.rng.unit());
        let action = ACTIONS[action_index];
        let failed = self.rng.unit() < 0.05;
        let id = format!("{}-{}", self.id_prefix, self.next);
        self.next += 1;
        let fact = Fact { at_ns, org: org as u16, action: action_index as u8, failed };
        let event = pb::AuditEvent {
            id,
            timestamp: Some(pbjson_types::Timestamp {
                seconds: at_ns.div_euclid(1_000_000_000),
                nanos: at_ns.rem_euclid(1_000_000_000) as i32,
            }),
            organization_id: org_name(org),
            action: action.to_owned(),
            actor: Some(pb::Actor { r#type: "identity".into(), id: format!("usr_{:06}", self.rng.below(50_000)) }),
            target: Some(pb::Target {
                r#type: "session".into(),
                id: format!("ses_{:08x}", self.rng.next_u64() as u32),
            }),
            result: if failed { "failure" } else { "success" }.to_owned(),
            ip: format!("198.51.100.{}", self.rng.below(254) + 1),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36".into(),
            details: None,
            log_index: 0,
        };
        (event, fact)
    }
}
