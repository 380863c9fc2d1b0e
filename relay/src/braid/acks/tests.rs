//! Ack batching: by count, by age, by total, bounded per strand.

use super::*;

#[test]
fn batches_by_count_and_age_and_bounds_each_strand() {
    let t0 = Instant::now();
    let mut q = AckQueue::default();
    let a = StrandId(1);
    q.push(a, [1; ACK_FRAGMENT_LEN], t0);
    let room = |_| true;
    assert_eq!(q.ready(t0, false, room), None, "one young ack waits");
    assert_eq!(
        q.ready(t0 + ACK_DELAY, false, room),
        Some(a),
        "an old ack goes"
    );
    assert_eq!(q.ready(t0, true, room), Some(a), "a flush sends it");
    let b = StrandId(2);
    q.push(b, [9; ACK_FRAGMENT_LEN], t0);
    assert_eq!(
        q.ready(t0, true, |s| s == b),
        Some(b),
        "a strand with room goes first"
    );
    assert_eq!(q.take(b, 10_000).len(), ACK_FRAGMENT_LEN);
    for i in 0..(ACK_EVERY - 1) {
        q.push(a, [i as u8; ACK_FRAGMENT_LEN], t0);
    }
    assert_eq!(
        q.ready(t0, false, room),
        Some(a),
        "ACK_EVERY acks go at once"
    );
    let body = q.take(a, 2 * ACK_FRAGMENT_LEN + 5);
    assert_eq!(body.len(), 2 * ACK_FRAGMENT_LEN, "no more than fits");
    assert_eq!(&body[..ACK_FRAGMENT_LEN], &[1; ACK_FRAGMENT_LEN]);
    assert_eq!(q.take(a, 100_000).len(), (ACK_EVERY - 2) * ACK_FRAGMENT_LEN);
    assert!(q.is_empty());
    for i in 0..(ACKS_PER_STRAND + 10) {
        q.push(a, [i as u8; ACK_FRAGMENT_LEN], t0);
    }
    let body = q.take(a, usize::MAX);
    assert_eq!(body.len(), ACKS_PER_STRAND * ACK_FRAGMENT_LEN, "bounded");
    assert_eq!(body[0], 10, "the oldest were dropped");
    assert!(q.is_empty());
    // Eight strands, each below ACK_EVERY, together reach ACK_TOTAL: the fullest goes.
    for s in 0..8u32 {
        let n = if s == 5 { 9 } else { 8 };
        for _ in 0..n {
            q.push(StrandId(s), [0; ACK_FRAGMENT_LEN], t0);
        }
    }
    const { assert!(8 < ACK_EVERY && 8 * 8 + 1 >= ACK_TOTAL) };
    assert_eq!(
        q.ready(t0, false, room),
        Some(StrandId(5)),
        "the fullest batch"
    );
    assert_eq!(q.take(StrandId(5), usize::MAX).len(), 9 * ACK_FRAGMENT_LEN);
    assert_eq!(q.ready(t0, false, room), None, "below ACK_TOTAL again");
}
