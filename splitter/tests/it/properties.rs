//! Property tests: any loss, reordering and duplication pattern within the bounds either
//! reassembles the exact bytes or fails with a clear error; junk never changes the output.

use std::num::NonZeroU32;

use braid_splitter::config::PayloadLimit;
use braid_splitter::harness::{Dice, Link, Net, STREAM, data, keys};
use braid_splitter::{
    Config, ErasureParams, Error, Received, Receiver, SendAction, Sender, StrandId,
};
use proptest::prelude::*;

/// Small bounds so that windows, reordering and resends are exercised with little data.
fn small_config() -> Config {
    Config {
        max_payload: PayloadLimit::try_from(512).unwrap(),
        window_bytes: NonZeroU32::new(16 << 10).unwrap(),
        window_fragments: NonZeroU32::new(48).unwrap(),
        ..Config::default()
    }
}

/// All fragments of `payload` (written in `chunk`-byte writes, then FIN) as a sender emits
/// them, with a window large enough that no ack is needed.
fn fragments(payload: &[u8], chunk: usize, seed: u64) -> Vec<Vec<u8>> {
    let config = Config::default();
    let mut sender = Sender::new(&config, STREAM, keys(), seed).unwrap();
    sender.add_strand(StrandId(0)).unwrap();
    for part in payload.chunks(chunk.max(1)) {
        assert_eq!(sender.write(part).unwrap(), part.len());
    }
    sender.finish().unwrap();
    let mut out = Vec::new();
    while let SendAction::Transmit { fragment, .. } = sender.poll(0).unwrap() {
        out.push(fragment.to_vec());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Over a lossy, duplicating, reordering braid (one strand possibly dying), the transfer
    /// completes with the exact bytes, or fails with the resend-limit error; nothing else.
    #[test]
    fn lossy_braid_reassembles_exactly_or_fails_clearly(
        len in 0usize..40_000,
        chunk in 1usize..5000,
        k in 1usize..=4,
        loss in 0.0f64..0.25,
        dup in 0.0f64..0.2,
        jitter in 0u64..200,
        death in proptest::option::of(0u64..2000),
        seed in any::<u64>(),
    ) {
        let payload = data(len, seed);
        let mut links = vec![Link { delay: 10, jitter, loss, dup, dies_at: None }; k];
        if k > 1 {
            links[0].dies_at = death;
        }
        let config = small_config();
        let mut net = Net::new(&config, links, seed);
        match net.run(&payload, chunk, 24 * 3_600_000) {
            Ok(done) => {
                prop_assert!(done, "stalled without an error");
                prop_assert_eq!(&net.out, &payload);
            }
            Err(Error::ResendLimit { .. }) => prop_assert!(payload.starts_with(&net.out)),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
        prop_assert!(net.max_buffered <= config.window_bytes.get() as usize);
    }

    /// Fragments fed in any order, with any duplicates, always deliver a prefix of the stream,
    /// and the whole stream exactly once every fragment was seen; junk is dropped and counted.
    #[test]
    fn any_order_and_duplicates_deliver_the_exact_stream(
        len in 0usize..60_000,
        chunk in 100usize..9000,
        seed in any::<u64>(),
        dups in 0usize..20,
        junk in 0usize..10,
    ) {
        let payload = data(len, seed);
        let frags = fragments(&payload, chunk, seed);
        let mut dice = Dice::new(seed);
        let mut schedule: Vec<Vec<u8>> = frags.clone();
        for _ in 0..dups {
            let i = dice.below(frags.len() as u64) as usize;
            schedule.push(frags[i].clone());
        }
        for _ in 0..junk {
            let mut bad = frags[dice.below(frags.len() as u64) as usize].clone();
            let i = dice.below(bad.len() as u64) as usize;
            bad[i] ^= 1 << dice.below(8);
            schedule.push(bad);
            schedule.push(data(dice.below(100) as usize, dice.next()));
        }
        for i in (1..schedule.len()).rev() {
            let j = dice.below(i as u64 + 1) as usize;
            schedule.swap(i, j);
        }
        let mut receiver = Receiver::new(&Config::default(), STREAM, keys()).unwrap();
        let mut out = Vec::new();
        let mut finished = false;
        for f in &schedule {
            let r = receiver.on_fragment(StrandId(dice.below(3) as u32), f, &mut out).unwrap();
            if let Received::Accepted { finished: true, .. } = r {
                finished = true;
            }
            prop_assert!(payload.starts_with(&out));
        }
        prop_assert!(finished);
        prop_assert_eq!(&out, &payload);
        let stats = receiver.stats();
        prop_assert_eq!(stats.fragments_accepted, frags.len() as u64);
        prop_assert_eq!(stats.dropped.duplicate, dups as u64);
        prop_assert_eq!(stats.dropped.forged + stats.dropped.malformed, 2 * junk as u64);
    }

    /// Any k of the n shards, in any order, rebuild the exact message; fewer deliver nothing.
    #[test]
    fn any_k_shards_rebuild_the_message(
        len in 0usize..20_000,
        k in 1usize..6,
        extra in 1usize..5,
        seed in any::<u64>(),
    ) {
        let n = k + extra;
        let params = ErasureParams::new(k, n).unwrap();
        let max = params.max_message_len(Config::default().max_payload.get());
        let too_long = matches!(
            Sender::new(&Config::default(), STREAM, keys(), seed).unwrap().write_message(&vec![0; max + 1], params),
            Err(Error::MessageTooLong { .. })
        );
        prop_assert!(too_long);
        let message = data(len % (max + 1), seed);
        let mut sender = Sender::new(&Config::default(), STREAM, keys(), seed).unwrap();
        sender.add_strand(StrandId(0)).unwrap();
        prop_assert!(sender.write_message(&message, params).unwrap());
        let mut shards = Vec::new();
        while let SendAction::Transmit { fragment, .. } = sender.poll(0).unwrap() {
            shards.push(fragment.to_vec());
        }
        prop_assert_eq!(shards.len(), n);
        let mut dice = Dice::new(seed);
        for i in (1..n).rev() {
            let j = dice.below(i as u64 + 1) as usize;
            shards.swap(i, j);
        }
        let mut receiver = Receiver::new(&Config::default(), STREAM, keys()).unwrap();
        let mut out = Vec::new();
        for (i, shard) in shards.iter().enumerate() {
            let r = receiver.on_fragment(StrandId(0), shard, &mut out).unwrap();
            if i + 1 < k {
                prop_assert!(out.is_empty());
            }
            if i + 1 > k {
                let duplicate = matches!(r, Received::Duplicate { .. });
                prop_assert!(duplicate);
            }
        }
        prop_assert_eq!(&out, &message);
        // Surplus shards: "redundant" while the message waits for delivery, "duplicate" after.
        let dropped = receiver.stats().dropped;
        prop_assert_eq!(dropped.redundant + dropped.duplicate, (n - k) as u64);
    }
}
