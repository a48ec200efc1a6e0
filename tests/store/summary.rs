//! Summaries are exact: the rollup-backed answer equals the naive count and the
//! count made in memory, for any range, alignment and scope.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::support::{
    DAY, Generated, HOUR, MINUTE, NANOS_PER_SECOND, TestStore, append_all, assert_exact, now_ns, org_scope,
};
use audit_service::domain::OrgScope;

pub const ORGS: [&str; 4] = ["org_a", "org_b", "org_c", "org_d"];
pub const ACTIONS: [&str; 6] = [
    "session.login",
    "session.logout",
    "user.created",
    "user.password.changed",
    "oauth.token.issued",
    "api_key.revoked",
];

/// A seed per run, printed so that a failure can be replayed with AUDIT_TEST_SEED.
pub fn seed() -> u64 {
    let seed = std::env::var("AUDIT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    // The harness does not capture output: the thread's name says which test this is.
    let test = std::thread::current().name().unwrap_or("unnamed thread").to_owned();
    eprintln!("seed: AUDIT_TEST_SEED={seed} ({test})");
    seed
}

/// `n` events over `span` nanoseconds from `start`: mostly anywhere, some exactly
/// on minute, hour and day boundaries, some sharing another event's instant.
pub fn generate(rng: &mut StdRng, n: usize, start: i64, span: i64) -> Vec<Generated> {
    let mut events: Vec<Generated> = Vec::with_capacity(n);
    for i in 0..n {
        let roll: f64 = rng.random();
        let at_ns = if roll < 0.1 {
            let width = *[MINUTE, HOUR, DAY].choose(rng).unwrap();
            let t = rng.random_range(start..start + span);
            (t.div_euclid(width) * width).max(start)
        } else if roll < 0.2 && !events.is_empty() {
            events[rng.random_range(0..events.len())].at_ns
        } else {
            rng.random_range(start..start + span)
        };
        events.push(Generated {
            id: format!("e{i}"),
            org: ORGS.choose(rng).unwrap().to_string(),
            action: ACTIONS.choose(rng).unwrap().to_string(),
            failed: rng.random_bool(0.2),
            at_ns,
        });
    }
    events
}

/// Ranges of every shape a plan can take, over and around the events' span.
pub fn ranges(rng: &mut StdRng, events: &[Generated], random: usize) -> Vec<(i64, i64)> {
    let lo = events.iter().map(|e| e.at_ns).min().unwrap();
    let hi = events.iter().map(|e| e.at_ns).max().unwrap() + 1;
    let mut out = Vec::new();
    let pair = |a: i64, b: i64, out: &mut Vec<(i64, i64)>| {
        if a != b {
            out.push((a.min(b), a.max(b)));
        }
    };
    // Unaligned, at microsecond then at nanosecond precision.
    for precision in [1_000, 1] {
        for _ in 0..random {
            let a = rng.random_range(lo - DAY..hi + DAY) / precision * precision;
            let b = rng.random_range(lo - DAY..hi + DAY) / precision * precision;
            pair(a, b, &mut out);
        }
    }
    // Aligned on each bucket width.
    for _ in 0..random / 3 {
        let (width, most) = *[(DAY, 30), (HOUR, 300), (MINUTE, 3000)].choose(rng).unwrap();
        let a = rng.random_range(lo - DAY..hi).div_euclid(width) * width;
        pair(a, a + width * rng.random_range(1..=most), &mut out);
    }
    // Inside one minute or one hour bucket.
    for _ in 0..random / 4 {
        let width = *[MINUTE, HOUR].choose(rng).unwrap();
        let bucket = rng.random_range(lo..hi).div_euclid(width) * width;
        let a = bucket + rng.random_range(0..width - 1);
        pair(a, rng.random_range(a + 1..=bucket + width), &mut out);
    }
    // Exact edges: at an event's instant (start inclusive, end exclusive) and on
    // the buckets holding it.
    for _ in 0..random / 4 {
        let at = events.choose(rng).unwrap().at_ns;
        pair(at, at + 1, &mut out);
        pair(at - rng.random_range(1..HOUR), at, &mut out);
        pair(at, at + rng.random_range(1..DAY), &mut out);
        for width in [MINUTE, HOUR, DAY] {
            let bucket = at.div_euclid(width) * width;
            pair(bucket, bucket + width, &mut out);
            pair(bucket - width, bucket, &mut out);
        }
    }
    // Empty, and beyond where events can be (clamped).
    pair(lo - 10 * DAY, lo - 5 * DAY, &mut out);
    pair(hi, hi + DAY, &mut out);
    pair(0, 1, &mut out);
    pair(i64::MIN / 2, i64::MAX / 2, &mut out);
    pair(7_258_118_400 * NANOS_PER_SECOND - 1, i64::MAX, &mut out);
    out
}

pub fn scopes() -> Vec<OrgScope> {
    let mut scopes: Vec<OrgScope> = ORGS.iter().map(|org| org_scope(org)).collect();
    scopes.push(OrgScope::All);
    scopes.push(org_scope("org_without_events"));
    scopes
}

pub async fn summaries_are_exact_at_any_alignment(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    // ~40 days around now, from an unaligned instant.
    let start = now_ns() - 20 * DAY - rng.random_range(0..DAY);
    let events = generate(&mut rng, 4000, start, 40 * DAY);
    append_all(&s.store, &events).await;
    let ranges = ranges(&mut rng, &events, 100);
    for (from, to) in ranges {
        for scope in scopes() {
            assert_exact(s, &events, &scope, from, to).await;
        }
    }
}
