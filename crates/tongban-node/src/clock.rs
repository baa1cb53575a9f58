//! The node's clock. Deadlines, case-number dates and overdue lists read it,
//! so tests can set the time instead of waiting for it.

use std::sync::Arc;

use time::{Date, OffsetDateTime, UtcOffset};

/// China Standard Time: case numbers and working days follow the local date.
pub const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("valid offset"),
};

/// A source of the current time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(OffsetDateTime::now_utc))
    }

    /// A clock that reads whatever `f` returns (tests).
    pub fn from_fn(f: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }

    /// Today's date in China Standard Time.
    pub fn today(&self) -> Date {
        self.now().to_offset(CST).date()
    }

    /// Now as RFC 3339 UTC text.
    pub fn now_rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

/// Formats a time as RFC 3339 UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
