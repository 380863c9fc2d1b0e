//! The pieces of a registry's `role` line: a short peer id and an RFC 3339 UTC time. Not the
//! line itself (`nodes::registry` prints it).

/// A peer id as operators recognise it: its last 8 characters after an ellipsis
/// (`…Lv9NqnY4`), the part that differs between peers (every Ed25519 id starts `12D3KooW`).
pub(super) fn short_peer(peer: &impl std::fmt::Display) -> String {
    let text = peer.to_string();
    let tail = text.len().saturating_sub(8);
    format!("…{}", text.get(tail..).unwrap_or(&text))
}

/// `time` as RFC 3339 in UTC with milliseconds (`2026-12-07T21:04:05.123Z`).
pub(super) fn rfc3339_utc(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2026-12-07T21:04:05.123Z, and a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(1_796_677_445_123);
        assert_eq!(rfc3339_utc(t), "2026-12-07T21:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00.000Z");
    }
}
