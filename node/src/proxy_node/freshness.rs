//! Whether the proxy's directory snapshot may still be built on: a snapshot is usable until
//! `valid_until + grace`; past that the proxy builds no new circuits until a snapshot that is
//! within it arrives. A plain decision on unix seconds passed in, plus the one-bit memory that
//! makes each change reported once. It does not fetch, log or touch the circuit manager.

/// A change the proxy must act on (and log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub(crate) enum Change {
    /// The snapshot in use ended at `valid_until` and the grace has passed too: stop building.
    BecameStale {
        /// The snapshot's end.
        valid_until: u64,
        /// Seconds since `valid_until`.
        late_by: u64,
    },
    /// A snapshot within its validity and grace is held again: build again.
    FreshAgain {
        /// The new snapshot's end.
        valid_until: u64,
    },
}

/// Remembers whether the proxy has stopped building, so each change is reported once.
#[derive(Debug, Clone)]
pub(crate) struct StaleWatch {
    grace: u64,
    stale: bool,
}

impl StaleWatch {
    pub(crate) fn new(grace_secs: u64) -> Self {
        Self {
            grace: grace_secs,
            stale: false,
        }
    }

    /// The snapshot held now ends at `valid_until` (`None`: none held yet, which is not
    /// stale: there is nothing to build with anyway). Returns the change, if any.
    pub(crate) fn observe(&mut self, valid_until: Option<u64>, now: u64) -> Option<Change> {
        let valid_until = valid_until?;
        let stale = now > valid_until.saturating_add(self.grace);
        match (self.stale, stale) {
            (false, true) => {
                self.stale = true;
                Some(Change::BecameStale {
                    valid_until,
                    late_by: now.saturating_sub(valid_until),
                })
            }
            (true, false) => {
                self.stale = false;
                Some(Change::FreshAgain { valid_until })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition() {
        let mut watch = StaleWatch::new(3600);
        // No snapshot yet: nothing to say.
        assert_eq!(watch.observe(None, 10_000), None);
        // Within validity, then within the grace: still fresh.
        assert_eq!(watch.observe(Some(1000), 900), None);
        assert_eq!(watch.observe(Some(1000), 1000 + 3600), None);
        // One second past the grace: stale, reported once.
        assert_eq!(
            watch.observe(Some(1000), 1000 + 3601),
            Some(Change::BecameStale {
                valid_until: 1000,
                late_by: 3601
            })
        );
        assert_eq!(watch.observe(Some(1000), 9999), None);
        // Losing the snapshot altogether does not unblock.
        assert_eq!(watch.observe(None, 9999), None);
        // A fresh one arrives: reported once.
        assert_eq!(
            watch.observe(Some(20_000), 10_000),
            Some(Change::FreshAgain {
                valid_until: 20_000
            })
        );
        assert_eq!(watch.observe(Some(20_000), 10_001), None);
    }

    #[test]
    fn a_zero_grace_stops_right_after_valid_until() {
        let mut watch = StaleWatch::new(0);
        assert_eq!(watch.observe(Some(50), 50), None);
        assert!(matches!(
            watch.observe(Some(50), 51),
            Some(Change::BecameStale { late_by: 1, .. })
        ));
    }
}
