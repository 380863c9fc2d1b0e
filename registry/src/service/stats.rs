//! A registry's publish counters, plain relaxed atomics the node maps to metrics. The result
//! of a publish is one of a fixed set ([`PublishResult`]); nothing here names a relay.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::{RefuseCode, Response};

/// How a registry answered one `Publish` it handled (a bounded set: metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishResult {
    /// Listed (or already listed unchanged).
    Accepted,
    /// The descriptor's identity is not the sending peer.
    WrongPeer,
    /// Expired or not yet valid by this registry's clock.
    NotFresh,
    /// A claimed address failed the dial-back or the address rules.
    Unreachable,
    /// The replicated state refused it (not newer, full ...).
    Rejected,
    /// Rate-limited or too many requests at once.
    Busy,
    /// No Raft leader, storage error or timeout.
    Unavailable,
    /// Any other refusal.
    Other,
}

impl PublishResult {
    /// Every result, in counter order.
    pub const ALL: [PublishResult; 8] = [
        PublishResult::Accepted,
        PublishResult::WrongPeer,
        PublishResult::NotFresh,
        PublishResult::Unreachable,
        PublishResult::Rejected,
        PublishResult::Busy,
        PublishResult::Unavailable,
        PublishResult::Other,
    ];

    /// The label value (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            PublishResult::Accepted => "accepted",
            PublishResult::WrongPeer => "wrong_peer",
            PublishResult::NotFresh => "not_fresh",
            PublishResult::Unreachable => "unreachable",
            PublishResult::Rejected => "rejected",
            PublishResult::Busy => "busy",
            PublishResult::Unavailable => "unavailable",
            PublishResult::Other => "other",
        }
    }

    /// The result an answer to a `Publish` stands for.
    pub fn of(response: &Response) -> Self {
        match response {
            Response::Published => PublishResult::Accepted,
            Response::Refused(r) => match r.code() {
                RefuseCode::WrongPeer => PublishResult::WrongPeer,
                RefuseCode::NotFresh => PublishResult::NotFresh,
                RefuseCode::Unreachable => PublishResult::Unreachable,
                RefuseCode::Rejected => PublishResult::Rejected,
                RefuseCode::Busy => PublishResult::Busy,
                RefuseCode::Unavailable => PublishResult::Unavailable,
                _ => PublishResult::Other,
            },
            _ => PublishResult::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters a registry keeps.
#[derive(Debug, Default)]
pub struct RegistryStats {
    publishes: [AtomicU64; PublishResult::ALL.len()],
}

impl RegistryStats {
    /// Counts one handled publish.
    pub(crate) fn count_publish(&self, result: PublishResult) {
        if let Some(c) = self.publishes.get(result.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Publishes handled with `result` since start.
    pub fn publishes(&self, result: PublishResult) -> u64 {
        self.publishes
            .get(result.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Refusal;

    #[test]
    fn answers_map_to_their_result_and_count() {
        let stats = RegistryStats::default();
        let refused = Response::Refused(Refusal::new(RefuseCode::NotFresh, "old"));
        stats.count_publish(PublishResult::of(&Response::Published));
        stats.count_publish(PublishResult::of(&refused));
        stats.count_publish(PublishResult::of(&refused));
        assert_eq!(stats.publishes(PublishResult::Accepted), 1);
        assert_eq!(stats.publishes(PublishResult::NotFresh), 2);
        assert_eq!(stats.publishes(PublishResult::Busy), 0);
        for (i, r) in PublishResult::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
