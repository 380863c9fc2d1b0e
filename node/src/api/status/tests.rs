//! Traffic samples: rates over the interval, none on the first sample.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn the_first_sample_has_no_rate_and_the_next_ones_do() {
    let started = Instant::now();
    let first = Sample::default().next(
        started + Duration::from_millis(50),
        started,
        10_000,
        0,
        None,
    );
    assert_eq!((first.rate_in, first.rate_out), (0.0, 0.0));
    assert_eq!(first.bytes_in, 10_000);
    let second = first.next(
        started + Duration::from_millis(1050),
        started,
        14_096,
        4096,
        Some(2),
    );
    assert_eq!(second.t_ms, 1050);
    assert!((second.rate_in - 4096.0).abs() < 1e-6, "{second:?}");
    assert!((second.rate_out - 4096.0).abs() < 1e-6, "{second:?}");
    assert_eq!(second.circuits_open, Some(2));
    // Counters never run backwards into a huge rate.
    let third = second.next(started + Duration::from_millis(2050), started, 0, 0, None);
    assert_eq!((third.rate_in, third.rate_out), (0.0, 0.0));
}
