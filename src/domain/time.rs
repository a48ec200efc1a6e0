//! Instants as integer nanoseconds since the Unix epoch, and half-open ranges of them.

use pbjson_types::Timestamp;

/// Events must lie in [1970-01-01, 2200-01-01): older or later is a client bug,
/// and the bound keeps every bucket computation far from overflow.
pub const EARLIEST_EVENT_NANOS: i64 = 0;
pub const LATEST_EVENT_NANOS: i64 = 7_258_118_400 * 1_000_000_000;

/// Protobuf's Timestamp range: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// An event time. Integer nanoseconds keep comparisons exact at any precision a
/// client sends, and cover 1677-09-21 to 2262-04-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixNanos(i64);

impl UnixNanos {
    pub fn get(self) -> i64 {
        self.0
    }

    pub fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// An event's timestamp; `None` when it is not a valid protobuf Timestamp or
    /// lies outside the nanosecond range.
    pub fn from_timestamp(ts: &Timestamp) -> Option<Self> {
        i64::try_from(timestamp_nanos(ts)?).ok().map(Self)
    }

    pub fn to_timestamp(self) -> Timestamp {
        Timestamp { seconds: self.0.div_euclid(1_000_000_000), nanos: self.0.rem_euclid(1_000_000_000) as i32 }
    }
}

/// Nanoseconds since the epoch of a valid protobuf Timestamp.
pub(crate) fn timestamp_nanos(ts: &Timestamp) -> Option<i128> {
    let valid = (MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) && (0..1_000_000_000).contains(&ts.nanos);
    valid.then(|| i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos))
}

/// `[start, end)` with `start < end`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start: i128,
    end: i128,
}

impl TimeRange {
    /// `None` unless `start < end`.
    pub fn new(start: i128, end: i128) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    /// The range clamped to where events can be. Exact: no stored event lies
    /// outside it, so clamping drops none and adds none. Possibly empty.
    pub fn clamped_nanos(self) -> (i64, i64) {
        let clamp = |n: i128| n.clamp(i128::from(EARLIEST_EVENT_NANOS), i128::from(LATEST_EVENT_NANOS)) as i64;
        (clamp(self.start), clamp(self.end))
    }

    pub fn start(self) -> i128 {
        self.start
    }

    pub fn end(self) -> i128 {
        self.end
    }
}
