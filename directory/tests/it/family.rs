//! Declared families: the both-ways rule, through real signed descriptors and a directory.

use braid_directory::{Descriptor, Directory, ExitPolicy, Families, SignedDescriptor};
use ed25519_dalek::SigningKey;

use crate::support::{DAY, T0};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id(seed: u8) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

/// Relay `seed` declaring the relays `family` (by seed), signed and decoded back from bytes.
fn relay(seed: u8, family: &[u8]) -> SignedDescriptor {
    let signed = Descriptor {
        identity: id(seed),
        onion_key: [seed; 32],
        addresses: vec![format!("/ip4/10.{seed}.0.1/udp/4001/quic-v1")],
        nickname: format!("relay{seed}"),
        bandwidth: 1 << 20,
        exit_policy: ExitPolicy::reject_all(),
        family: family.iter().map(|&s| id(s)).collect(),
        published: T0,
        expires: T0 + DAY,
    }
    .sign(&key(seed))
    .unwrap();
    SignedDescriptor::decode(&signed.encode()).unwrap()
}

#[test]
fn a_family_holds_only_when_declared_both_ways() {
    // 1 <-> 2 mutual; 3 -> 4 one-sided; 5 <-> 6 and 6 <-> 7 mutual, 5 and 7 not; 8 lists 1,
    // which does not list 8 back; 9 lists a relay not in the directory.
    let directory = Directory::new(vec![
        relay(1, &[2]),
        relay(2, &[1]),
        relay(3, &[4]),
        relay(4, &[]),
        relay(5, &[6]),
        relay(6, &[5, 7]),
        relay(7, &[6]),
        relay(8, &[1]),
        relay(9, &[42]),
    ])
    .unwrap();
    let families = directory.families();
    assert_eq!(
        families,
        Families::new(directory.descriptors().into_iter().map(|d| d.descriptor()))
    );
    let related = |a: u8, b: u8| families.related(&id(a), &id(b));
    assert!(related(1, 2) && related(2, 1));
    assert!(
        !related(3, 4) && !related(4, 3),
        "one-sided is not a family"
    );
    assert!(related(5, 6) && related(6, 7));
    assert!(!related(5, 7), "the relation is not made transitive");
    assert!(
        !related(8, 1) && !related(1, 8),
        "a stranger cannot claim relay 1"
    );
    assert!(!related(9, 42));
    for s in 1..=9 {
        assert!(!related(s, s), "never related to itself");
    }
    assert_eq!(families.members(&id(1)), &[id(2)]);
    let mut six = [id(5), id(7)];
    six.sort_unstable();
    assert_eq!(families.members(&id(6)), &six[..]);
    assert!(families.members(&id(3)).is_empty());
    assert_eq!(families.len(), 5); // 1, 2, 5, 6, 7
    assert!(Directory::default().families().is_empty());
}

#[test]
fn a_forged_declaration_does_not_make_a_family() {
    // Relay 2's real descriptor does not list 1; someone re-signing "2 lists 1" with another
    // key cannot get it accepted, so the family stays one-sided.
    let honest = relay(2, &[]);
    let forged = Descriptor {
        family: vec![id(1)],
        ..honest.descriptor().clone()
    };
    assert!(forged.sign(&key(3)).is_err(), "only 2's key signs for 2");
    let families = Families::new([relay(1, &[2]).descriptor(), honest.descriptor()]);
    assert!(!families.related(&id(1), &id(2)));
}
