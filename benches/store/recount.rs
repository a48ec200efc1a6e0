//! An independent recount of what the generator produced: each event's time,
//! organization, action and result, kept compactly and counted in plain Rust, so
//! every summary the store answers is checked against something that shares none
//! of its tables, queries or rollup arithmetic.

use audit_service::domain::ActionCount;

use crate::data::{ACTIONS, ORGS};

/// What a summary counts of one event: 16 bytes, so 10 million events take 160 MB.
#[derive(Clone, Copy)]
pub struct Fact {
    pub at_ns: i64,
    pub org: u16,
    pub action: u8,
    pub failed: bool,
}

#[derive(Default)]
pub struct Recount {
    facts: Vec<Fact>,
    sorted: bool,
}

impl Recount {
    pub fn record(&mut self, fact: Fact) {
        assert!(usize::from(fact.org) < ORGS && usize::from(fact.action) < ACTIONS.len());
        self.facts.push(fact);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Orders the facts by time; streams loaded one after another interleave in time.
    pub fn seal(&mut self) {
        self.facts.sort_unstable_by_key(|f| f.at_ns);
        self.sorted = true;
    }

    /// Per-action counts of events in `[start, end)`, for one organization (by the
    /// generator's index) or all; actions with no event are absent, as in a summary.
    /// Ordered by action name.
    pub fn summary(&self, start: i64, end: i64, org: Option<usize>) -> Vec<ActionCount> {
        assert!(self.sorted, "seal the recount before counting");
        let from = self.facts.partition_point(|f| f.at_ns < start);
        let to = self.facts.partition_point(|f| f.at_ns < end);
        let mut per_action = [(0i64, 0i64); ACTIONS.len()];
        for fact in &self.facts[from..to] {
            if org.is_none_or(|o| usize::from(fact.org) == o) {
                let slot = &mut per_action[usize::from(fact.action)];
                slot.0 += 1;
                slot.1 += i64::from(fact.failed);
            }
        }
        let mut counts: Vec<ActionCount> = per_action
            .iter()
            .zip(ACTIONS)
            .filter(|((count, _), _)| *count > 0)
            .map(|(&(count, failure_count), action)| ActionCount { action: action.to_owned(), count, failure_count })
            .collect();
        counts.sort_by(|a, b| a.action.cmp(&b.action));
        counts
    }
}
