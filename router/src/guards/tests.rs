//! The guard state machine on a virtual clock (unix seconds passed in) with a seeded RNG.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const T0: u64 = 1_800_000_000;

fn relay(i: u8, bandwidth: u64) -> ListedRelay {
    ListedRelay {
        id: [i; 32],
        nickname: format!("relay{i}"),
        bandwidth,
        eligible: true,
    }
}

fn relays(n: u8) -> Vec<ListedRelay> {
    (1..=n).map(|i| relay(i, 1000 * u64::from(i))).collect()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn started(n: u8, settings: GuardSettings) -> (Guards, Vec<ListedRelay>, StdRng) {
    let mut g = Guards::new(settings);
    let list = relays(n);
    let mut r = rng();
    let actions = g.update_listing(&list, T0, &mut r);
    assert_eq!(actions, vec![GuardAction::Save]);
    (g, list, r)
}

#[test]
fn the_sample_is_bounded_by_min_percent_and_cap() {
    // 8 relays: fewer than min_sample, so all are sampled.
    let (g, _, _) = started(8, GuardSettings::default());
    assert_eq!(g.sampled().len(), 8);
    // 200 relays: 20 % = 40 > 20, but the sample stops once 20 are usable.
    let (g, _, _) = started(200, GuardSettings::default());
    assert_eq!(g.sampled().len(), 20);
    assert_eq!(g.max_sample(200), 40);
    assert_eq!(g.max_sample(1000), 60, "hard cap");
    assert_eq!(g.max_sample(10), 20);
    // Ineligible relays are never sampled.
    let mut list = relays(30);
    for r in &mut list[..25] {
        r.eligible = false;
    }
    let mut g = Guards::new(GuardSettings::default());
    let _ = g.update_listing(&list, T0, &mut rng());
    assert_eq!(g.sampled().len(), 5);
    assert!(g.sampled().iter().all(|s| s.id[0] > 25));
}

#[test]
fn disabled_guards_make_room_for_more_up_to_the_bound() {
    let settings = GuardSettings {
        min_sample: 4,
        sample_percent: 50,
        max_sample: 60,
        ..GuardSettings::default()
    };
    // 10 relays: bound max(4, 5) = 5; 4 sampled first.
    let (mut g, list, mut r) = started(10, settings);
    assert_eq!(g.sampled().len(), 4);
    let first = g.primary()[0];
    g.guards
        .iter_mut()
        .find(|x| x.id == first)
        .unwrap()
        .disabled_at = Some(T0);
    let _ = g.update_listing(&list, T0 + 1, &mut r);
    assert_eq!(g.sampled().len(), 5, "one more, up to the bound");
    g.guards.iter_mut().for_each(|x| x.disabled_at = Some(T0));
    let _ = g.update_listing(&list, T0 + 2, &mut r);
    assert_eq!(g.sampled().len(), 5, "never past the bound");
    assert!(g.primary().is_empty());
}

#[test]
fn sampling_is_bandwidth_weighted() {
    // Relay 1 has 1000x the bandwidth of each other: it is nearly always sampled first.
    let mut firsts = 0;
    for seed in 0..200 {
        let mut list: Vec<ListedRelay> = (1..=10).map(|i| relay(i, 1)).collect();
        list[0].bandwidth = 1000;
        let mut g = Guards::new(GuardSettings::default());
        let _ = g.update_listing(&list, T0, &mut StdRng::seed_from_u64(seed));
        if g.sampled()[0].id == [1; 32] {
            firsts += 1;
        }
    }
    assert!(firsts > 180, "{firsts}/200");
}

#[test]
fn primaries_are_confirmed_first_then_sample_order() {
    let (mut g, _, _) = started(8, GuardSettings::default());
    let order: Vec<GuardId> = g.sampled().iter().map(|s| s.id).collect();
    assert_eq!(g.primary(), &order[..3]);
    // Confirm sample #5, then #4: they lead, in confirmation order.
    let _ = g.record_build(&order[5], BuildOutcome::Built, T0 + 1);
    let _ = g.record_build(&order[4], BuildOutcome::Built, T0 + 2);
    assert_eq!(g.primary(), &[order[5], order[4], order[0]]);
    assert_eq!(g.get(&order[5]).unwrap().confirmed, Some((0, T0 + 1)));
    assert_eq!(g.get(&order[4]).unwrap().confirmed, Some((1, T0 + 2)));
    // A second build does not change the confirmation.
    let _ = g.record_build(&order[5], BuildOutcome::Built, T0 + 3);
    assert_eq!(g.get(&order[5]).unwrap().confirmed, Some((0, T0 + 1)));
    // More primaries when asked.
    let mut wide = Guards::decode(
        GuardSettings {
            primary: 5,
            ..GuardSettings::default()
        },
        &g.encode(),
    )
    .unwrap();
    assert_eq!(wide.usable_primary(T0).len(), 5);
}

#[test]
fn sampled_and_confirmed_guards_expire_on_tors_time_scales() {
    let (mut g, list, mut r) = started(8, GuardSettings::default());
    let added: Vec<u64> = g.sampled().iter().map(|s| s.added_at).collect();
    // Randomized up to a tenth of 120 days into the past.
    assert!(added.iter().all(|&a| a <= T0 && a > T0 - 12 * DAY));
    let confirmed = g.sampled()[0].id;
    // Confirmed at day 100: kept until day 160.
    let _ = g.record_build(&confirmed, BuildOutcome::Built, T0 + 100 * DAY);
    let _ = g.update_listing(&list, T0 + 120 * DAY, &mut r);
    // Every unconfirmed guard of the first sample is gone (the sample was refilled).
    for s in g.sampled() {
        assert!(s.id == confirmed || s.added_at > T0 + 100 * DAY);
    }
    assert_eq!(g.primary()[0], confirmed);
    let _ = g.update_listing(&list, T0 + 159 * DAY, &mut r);
    assert!(g.get(&confirmed).is_some());
    let _ = g.update_listing(&list, T0 + 161 * DAY, &mut r);
    // Removed 60 days after confirmation; with only 8 relays it is sampled again, afresh.
    let again = g.get(&confirmed).unwrap();
    assert!(again.confirmed.is_none() && again.added_at > T0 + 140 * DAY);
}

#[test]
fn unlisted_guards_leave_the_primaries_and_are_removed_after_20_days() {
    let (mut g, list, mut r) = started(8, GuardSettings::default());
    let first = g.primary()[0];
    let _ = g.record_build(&first, BuildOutcome::Built, T0);
    let without: Vec<ListedRelay> = list.iter().filter(|x| x.id != first).cloned().collect();
    let _ = g.update_listing(&without, T0 + DAY, &mut r);
    assert!(!g.primary().contains(&first));
    assert_eq!(g.primary().len(), 3);
    assert_eq!(g.get(&first).unwrap().unlisted_since, Some(T0 + DAY));
    // Listed again within 20 days: primary again, first (confirmed).
    let _ = g.update_listing(&list, T0 + 5 * DAY, &mut r);
    assert_eq!(g.primary()[0], first);
    let _ = g.update_listing(&without, T0 + 6 * DAY, &mut r);
    let _ = g.update_listing(&without, T0 + 25 * DAY, &mut r);
    assert!(g.get(&first).is_some(), "19 days unlisted");
    let _ = g.update_listing(&without, T0 + 26 * DAY + 1, &mut r);
    assert!(g.get(&first).is_none(), "20 days unlisted");
}

#[test]
fn unreachable_primaries_are_retried_on_schedule() {
    assert_eq!(retry_delay(true, 0), 600);
    assert_eq!(retry_delay(true, 7 * 3600), 90 * 60);
    assert_eq!(retry_delay(true, 5 * DAY), 4 * 3600);
    assert_eq!(retry_delay(true, 8 * DAY), 9 * 3600);
    assert_eq!(retry_delay(false, 0), 3600);
    assert_eq!(retry_delay(false, 8 * DAY), 36 * 3600);
    let (mut g, _, _) = started(8, GuardSettings::default());
    let p = g.primary().to_vec();
    let _ = g.record_build(&p[0], BuildOutcome::Unreachable, T0);
    assert_eq!(g.usable_primary(T0 + 1), &p[1..]);
    assert_eq!(g.usable_primary(T0 + 599), &p[1..]);
    assert_eq!(g.usable_primary(T0 + 600), p, "retry due after 10 minutes");
    // Fails again at 7 h: next retry 90 minutes later.
    let _ = g.record_build(&p[0], BuildOutcome::Unreachable, T0 + 7 * 3600);
    assert_eq!(g.usable_primary(T0 + 7 * 3600 + 89 * 60), &p[1..]);
    assert_eq!(g.usable_primary(T0 + 7 * 3600 + 90 * 60), p);
    // A build clears the mark.
    let _ = g.record_build(&p[0], BuildOutcome::Built, T0 + 7 * 3600 + 1);
    assert_eq!(g.usable_primary(T0 + 7 * 3600 + 2), p);
    // Unreachability does not change the primaries and is not saved.
    let before = g.encode();
    for id in &p {
        let actions = g.record_build(id, BuildOutcome::Unreachable, T0 + 8 * 3600);
        assert!(actions.is_empty());
    }
    assert_eq!(g.encode(), before);
    assert_eq!(g.primary(), p);
    // All unreachable: every primary is retried at once.
    assert_eq!(g.usable_primary(T0 + 8 * 3600 + 1), p);
    assert_eq!(g.usable_primary(T0 + 8 * 3600 + 2), p, "marks were cleared");
}

fn test_bias() -> GuardSettings {
    GuardSettings {
        path_bias: PathBiasSettings {
            min_circuits: 10,
            min_circuit_percent: 50,
            min_uses: 6,
            min_use_percent: 60,
            scale_at: 100,
        },
        ..GuardSettings::default()
    }
}

#[test]
fn path_bias_disables_a_guard_whose_builds_fail() {
    let (mut g, _, _) = started(8, test_bias());
    let p = g.primary().to_vec();
    // 4 built, 5 failed: 9 attempts, below the minimum: still there.
    for i in 0..9 {
        let outcome = if i < 4 {
            BuildOutcome::Built
        } else {
            BuildOutcome::Failed
        };
        let actions = g.record_build(&p[1], outcome, T0 + i);
        assert_eq!(actions, vec![GuardAction::Save]);
    }
    assert!(g.primary().contains(&p[1]));
    // The 10th attempt fails: 4/10 < 50 %.
    let actions = g.record_build(&p[1], BuildOutcome::Failed, T0 + 20);
    assert_eq!(
        actions[1],
        GuardAction::Disabled {
            id: p[1],
            nickname: g.get(&p[1]).unwrap().nickname.clone(),
            kind: BiasKind::Builds,
            good: 4,
            total: 10,
        }
    );
    assert_eq!(g.get(&p[1]).unwrap().disabled_at, Some(T0 + 20));
    assert!(!g.primary().contains(&p[1]));
    assert_eq!(g.primary().len(), 3, "the next sampled guard moved up");
    // Disabled once only.
    assert_eq!(
        g.record_build(&p[1], BuildOutcome::Failed, T0 + 21),
        vec![GuardAction::Save]
    );
    // A guard at exactly 50 % stays.
    for i in 0..10 {
        let outcome = if i % 2 == 0 {
            BuildOutcome::Built
        } else {
            BuildOutcome::Failed
        };
        let _ = g.record_build(&p[2], outcome, T0 + 30 + i);
    }
    assert!(g.primary().contains(&p[2]));
}

#[test]
fn path_bias_disables_a_guard_whose_strands_stall() {
    let (mut g, _, _) = started(8, test_bias());
    let p = g.primary().to_vec();
    for i in 0..5 {
        let _ = g.record_use(&p[0], i % 2 == 0, T0 + i);
    }
    assert!(g.primary().contains(&p[0]), "5 uses: below the minimum");
    let actions = g.record_use(&p[0], false, T0 + 9);
    assert!(matches!(
        actions[1],
        GuardAction::Disabled {
            kind: BiasKind::Uses,
            good: 3,
            total: 6,
            ..
        }
    ));
    assert!(!g.primary().contains(&p[0]));
}

#[test]
fn path_bias_counts_are_scaled() {
    let (mut g, _, _) = started(8, test_bias());
    let p = g.primary()[0];
    for i in 0..100 {
        let _ = g.record_build(&p, BuildOutcome::Built, T0 + i);
    }
    assert_eq!(g.get(&p).unwrap().bias.attempts, 50);
    assert_eq!(g.get(&p).unwrap().bias.successes, 50);
    // 50 good, then failures: disabled once the rate drops below 50 %, not after 100 more.
    let mut n = 0;
    while g.primary().contains(&p) && n < 200 {
        let _ = g.record_build(&p, BuildOutcome::Failed, T0 + 200 + n);
        n += 1;
    }
    assert_eq!(n, 51);
}

#[test]
fn the_state_round_trips_and_gives_the_same_primaries() {
    let (mut g, list, mut r) = started(30, test_bias());
    let p = g.primary().to_vec();
    let _ = g.record_build(&p[2], BuildOutcome::Built, T0 + 5);
    let _ = g.record_build(&p[0], BuildOutcome::Failed, T0 + 6);
    let _ = g.record_use(&p[1], false, T0 + 7);
    for _ in 0..10 {
        let _ = g.record_build(&p[1], BuildOutcome::Failed, T0 + 8);
    }
    let without: Vec<ListedRelay> = list.iter().filter(|x| x.id != p[0]).cloned().collect();
    let _ = g.update_listing(&without, T0 + 9, &mut r);
    let bytes = g.encode();
    let back = Guards::decode(test_bias(), &bytes).unwrap();
    assert_eq!(back.sampled(), g.sampled());
    assert_eq!(back.primary(), g.primary());
    assert_eq!(back.encode(), bytes);
    // A new listing of the same relays changes nothing: no save.
    let mut again = back.clone();
    assert!(again.update_listing(&without, T0 + 10, &mut r).is_empty());
}

#[test]
fn a_known_file_decodes() {
    let mut g = Guards::new(GuardSettings::default());
    let _ = g.update_listing(&[relay(0xab, 5)], T0, &mut rng());
    let _ = g.record_build(&[0xab; 32], BuildOutcome::Built, T0 + 1);
    g.guards[0].added_at = T0;
    let hex = hex::encode(g.encode());
    let expected = format!(
        "{}{}{}{}{}{}{}{}{}{}",
        "4247524401",                       // magic, version
        "0001",                             // one guard
        "ab".repeat(32),                    // identity
        "0872656c6179313731",               // "relay171"
        "000000006b49d200",                 // added
        "00000000",                         // confirmation order 0
        "000000006b49d201",                 // confirmed
        "00000000000000000000000000000000", // unlisted, disabled
        "00000001000000010000000000000000", // attempts 1, built 1, uses 0, failures 0
        ""
    );
    assert_eq!(hex, expected);
}

#[test]
fn bad_files_are_rejected_with_their_reason() {
    let (mut g, _, _) = started(4, GuardSettings::default());
    let p = g.primary()[0];
    let _ = g.record_build(&p, BuildOutcome::Built, T0);
    let good = g.encode();
    assert!(Guards::decode(GuardSettings::default(), &good).is_ok());
    // Every strict prefix is an error (a truncated file).
    for n in 0..good.len() {
        assert!(
            Guards::decode(GuardSettings::default(), &good[..n]).is_err(),
            "{n}"
        );
    }
    let decode = |b: &[u8]| Guards::decode(GuardSettings::default(), b).unwrap_err();
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(decode(&trailing), GuardFileError::Codec(_)));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(decode(&magic), GuardFileError::Magic);
    let mut version = good.clone();
    version[4] = 2;
    assert_eq!(decode(&version), GuardFileError::Version(2));
    let mut count = good.clone();
    count[5..7].copy_from_slice(&300u16.to_be_bytes());
    assert_eq!(decode(&count), GuardFileError::Invalid("guard count"));
    // The first guard record starts at 7; its counts are its last 16 bytes.
    let first_len = 32 + 1 + g.sampled()[0].nickname.len() + 8 + 4 + 8 * 3 + 16;
    let mut counts = good.clone();
    let built = 7 + first_len - 12;
    counts[built..built + 4].copy_from_slice(&99u32.to_be_bytes());
    assert_eq!(decode(&counts), GuardFileError::Invalid("path-bias counts"));
    let mut dup = good.clone();
    let second = 7 + first_len;
    let id0 = good[7..39].to_vec();
    dup[second..second + 32].copy_from_slice(&id0);
    assert_eq!(decode(&dup), GuardFileError::Invalid("duplicated guard"));
    let mut nick = good.clone();
    nick[40] = 0xff;
    assert_eq!(decode(&nick), GuardFileError::Invalid("nickname"));
    let mut confirm = good.clone();
    let order = 7 + 32 + 1 + g.sampled()[0].nickname.len() + 8;
    confirm[order..order + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&confirm), GuardFileError::Invalid("confirmation"));
}

#[test]
fn nicknames_are_clipped_on_a_char_boundary() {
    assert_eq!(store::clip_nickname("abc"), "abc");
    let long = "é".repeat(40);
    let clipped = store::clip_nickname(&long);
    assert_eq!(clipped.len(), 64);
    let odd = format!("a{}", "é".repeat(40));
    assert_eq!(store::clip_nickname(&odd).len(), 63);
}

#[test]
fn guards_of_an_old_directory_do_not_keep_new_relays_out() {
    // 20 guards sampled from one network, then a directory with none of them (a proxy pointed
    // at another network, or a test reusing a data dir): the new relays are sampled at once and
    // the primaries come from them, while the old ones wait out their unlisted lifetime.
    let (mut g, _, mut r) = started(20, GuardSettings::default());
    assert_eq!(g.sampled().len(), 20);
    let other: Vec<ListedRelay> = (100..105).map(|i| relay(i, 1000)).collect();
    let _ = g.update_listing(&other, T0 + 60, &mut r);
    let primary = g.usable_primary(T0 + 60);
    assert_eq!(primary.len(), 3, "{primary:?}");
    assert!(primary.iter().all(|id| id[0] >= 100), "{primary:?}");
    assert_eq!(g.sampled().len(), 25, "old guards kept, unlisted");
    // The file's bound holds: the longest unlisted go first.
    for round in 0..12u64 {
        let fresh: Vec<ListedRelay> = (0..25u8)
            .map(|i| ListedRelay {
                id: [
                    i.wrapping_add(110 + (round as u8 % 6) * 25),
                    round as u8 + 1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
                nickname: format!("n{round}-{i}"),
                bandwidth: 1000,
                eligible: true,
            })
            .collect();
        let _ = g.update_listing(&fresh, T0 + 120 + round, &mut r);
        assert!(g.sampled().len() <= MAX_FILE_GUARDS);
    }
}
