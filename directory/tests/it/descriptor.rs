//! Descriptor signing and the wire codec: hex test vector, round trips, every reject path.

use braid_directory::descriptor::{
    CLOCK_SKEW_SECS, DESCRIPTOR_VERSION, MAX_ADDRESS_LEN, MAX_ADDRESSES, MAX_ENCODED_LEN,
    MAX_FAMILY_MEMBERS, MAX_LIFETIME_SECS, MAX_NICKNAME_LEN, SIGNING_DOMAIN,
};
use braid_directory::policy::MAX_EXIT_RULES;
use braid_directory::{AddrPattern, Descriptor, Error, ExitPolicy, ExitRule, SignedDescriptor};
use ed25519_dalek::{Signer, SigningKey};

const PUBLISHED: u64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// The fixed descriptor of the test vector: every address kind appears in the policy.
fn fixed() -> Descriptor {
    Descriptor {
        identity: key().verifying_key().to_bytes(),
        onion_key: [0x42; 32],
        addresses: vec!["/ip4/127.0.0.2/udp/4001/quic-v1".into()],
        nickname: "relay7".into(),
        bandwidth: 1_000_000,
        exit_policy: ExitPolicy::parse_rules(&[
            "reject private:*",
            "accept 192.0.2.0/24:80-443",
            "accept [2001:db8::1]:8080",
            "reject *:*",
        ])
        .unwrap(),
        family: vec![member_key()],
        published: PUBLISHED,
        expires: PUBLISHED + DAY,
    }
}

/// The identity (public key) of seed [8; 32]: `fixed()`'s one family member.
const MEMBER_HEX: &str = "1398f62c6d1a457c51ba6a4b5f3dbd2f69fca93216218dc8997e416bd17d93ca";

fn member_key() -> [u8; 32] {
    SigningKey::from_bytes(&[8u8; 32])
        .verifying_key()
        .to_bytes()
}

/// The identity (public key) of seed [7; 32].
const IDENTITY_HEX: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

/// The body of `fixed()`, written out field by field from the README table.
fn fixed_body_hex() -> String {
    [
        IDENTITY_HEX,           // identity
        &"42".repeat(32),       // onion key
        "01",                   // 1 address
        "01",                   /* tag 1: IPv4 QUIC */
        "7f000002",             // 127.0.0.2
        "0fa1",                 // udp/4001/quic-v1
        "06",                   // nickname, 6 bytes
        &hex::encode("relay7"), //
        "00000000000f4240",     // bandwidth 1e6
        "04",                   // 4 rules
        "02",                   /* reject, private */
        "0001ffff",             //
        "05",                   /* accept, v4 */
        "c0000200",
        "18",
        "005001bb", // 192.0.2.0/24:80-443
        "07",       /* accept, v6 */
        "20010db8000000000000000000000001",
        "80",
        "1f901f90",         // [2001:db8::1]:8080
        "00",               /* reject, any */
        "0001ffff",         //
        "01",               // 1 family member
        MEMBER_HEX,         //
        "000000006553f100", // published
        "0000000065554280", // expires
    ]
    .concat()
}

const SIGNATURE_HEX: &str = "b9bd388d28be1ea3b60ae1c33d021c826b79dd3b591fe201011f036ca409c9b8e6a577dfc99882f953b4a9b7074555c848a3f2db65f62174da2c1009aed41b0f";

/// Version byte, `body`, and a real signature by `key` over it.
fn signed_bytes(body: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&[SIGNING_DOMAIN, body].concat());
    [&[DESCRIPTOR_VERSION][..], body, &sig.to_bytes()].concat()
}

/// Offsets of fields inside the body of `fixed()` (the body starts after the version byte):
/// the first address's tag byte, and the nickname's length byte after its 7-byte address.
const ADDR_AT: usize = 32 + 32 + 1;
const NICK_LEN_AT: usize = ADDR_AT + 7;
const BANDWIDTH_AT: usize = NICK_LEN_AT + 1 + 6;
const RULE_COUNT_AT: usize = BANDWIDTH_AT + 8;

#[test]
fn hex_test_vector() {
    assert_eq!(hex::encode(key().verifying_key().to_bytes()), IDENTITY_HEX);
    let signed = fixed().sign(&key()).unwrap();
    let encoding = signed.encode();
    assert_eq!(
        hex::encode(&encoding),
        format!("03{}{SIGNATURE_HEX}", fixed_body_hex())
    );
    assert_eq!(hex::encode(signed.signature()), SIGNATURE_HEX);
    // The signature really is over the domain and the body.
    assert_eq!(
        encoding,
        signed_bytes(&hex::decode(fixed_body_hex()).unwrap(), &key())
    );
}

#[test]
fn decode_round_trips_and_reencodes_the_same_bytes() {
    let signed = fixed().sign(&key()).unwrap();
    let decoded = SignedDescriptor::decode(&signed.encode()).unwrap();
    assert_eq!(decoded, signed);
    assert_eq!(decoded.descriptor(), &fixed());
    assert_eq!(decoded.identity(), &fixed().identity);
    assert_eq!(decoded.encode(), signed.encode());
}

#[test]
fn random_keys_round_trip() {
    for _ in 0..8 {
        let key = SigningKey::generate(&mut rand::rng());
        let d = Descriptor {
            identity: key.verifying_key().to_bytes(),
            ..fixed()
        };
        let signed = d.sign(&key).unwrap();
        assert_eq!(
            SignedDescriptor::decode(&signed.encode())
                .unwrap()
                .descriptor(),
            &d
        );
    }
}

#[test]
fn signing_is_deterministic() {
    assert_eq!(
        fixed().sign(&key()).unwrap().encode(),
        fixed().sign(&key()).unwrap().encode()
    );
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let encoding = fixed().sign(&key()).unwrap().encode();
    for len in 0..encoding.len() {
        assert_eq!(
            SignedDescriptor::decode(&encoding[..len]),
            Err(Error::Incomplete),
            "prefix of {len} bytes"
        );
    }
    let max = maximal().0.encode();
    for len in 0..max.len() {
        assert_eq!(
            SignedDescriptor::decode(&max[..len]),
            Err(Error::Incomplete),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut encoding = fixed().sign(&key()).unwrap().encode();
    encoding.push(0);
    assert_eq!(
        SignedDescriptor::decode(&encoding),
        Err(Error::Malformed {
            what: "trailing bytes after the signature"
        })
    );
}

#[test]
fn unknown_version_is_rejected_first() {
    let mut encoding = fixed().sign(&key()).unwrap().encode();
    // Versions 1 (addresses as text) and 2 (no family) are no longer read.
    for v in [0u8, 1, 2, 4, 255] {
        encoding[0] = v;
        assert_eq!(
            SignedDescriptor::decode(&encoding),
            Err(Error::BadVersion(v))
        );
        assert_eq!(SignedDescriptor::decode(&[v]), Err(Error::BadVersion(v)));
    }
}

#[test]
fn forged_signature_is_rejected() {
    let good = fixed().sign(&key()).unwrap().encode();
    // A flipped bit in the signature.
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 0x01;
    assert_eq!(SignedDescriptor::decode(&forged), Err(Error::BadSignature));
    // A field changed after signing (bandwidth 1e6 -> 2e6), still a valid value.
    let mut tampered = good.clone();
    let at = 1 + BANDWIDTH_AT;
    assert_eq!(tampered[at..at + 8], 1_000_000u64.to_be_bytes());
    tampered[at..at + 8].copy_from_slice(&2_000_000u64.to_be_bytes());
    assert_eq!(
        SignedDescriptor::decode(&tampered),
        Err(Error::BadSignature)
    );
    // An all-zero signature.
    let mut zeroed = good;
    let n = zeroed.len();
    zeroed[n - 64..].fill(0);
    assert_eq!(SignedDescriptor::decode(&zeroed), Err(Error::BadSignature));
}

#[test]
fn signature_by_another_key_is_rejected() {
    let other = SigningKey::from_bytes(&[8u8; 32]);
    // The body names key 7 as identity but key 8 signed it.
    let encoding = signed_bytes(&hex::decode(fixed_body_hex()).unwrap(), &other);
    assert_eq!(
        SignedDescriptor::decode(&encoding),
        Err(Error::BadSignature)
    );
    // And `sign` refuses to make such a thing.
    assert_eq!(fixed().sign(&other), Err(Error::KeyMismatch));
}

#[test]
fn freshness_window() {
    let signed = fixed().sign(&key()).unwrap();
    let expires = PUBLISHED + DAY;
    assert_eq!(signed.check_fresh(PUBLISHED), Ok(()));
    assert_eq!(signed.check_fresh(expires - 1), Ok(()));
    assert_eq!(
        signed.check_fresh(expires),
        Err(Error::Expired {
            expires,
            now: expires
        })
    );
    assert_eq!(
        signed.check_fresh(u64::MAX),
        Err(Error::Expired {
            expires,
            now: u64::MAX
        })
    );
    // Published up to CLOCK_SKEW_SECS in our future is tolerated, one second more is not.
    assert_eq!(signed.check_fresh(PUBLISHED - CLOCK_SKEW_SECS), Ok(()));
    let now = PUBLISHED - CLOCK_SKEW_SECS - 1;
    assert_eq!(
        signed.check_fresh(now),
        Err(Error::NotYetValid {
            published: PUBLISHED,
            now
        })
    );
    assert_eq!(
        signed.check_fresh(0),
        Err(Error::NotYetValid {
            published: PUBLISHED,
            now: 0
        })
    );
}

fn field_error(d: &Descriptor) -> &'static str {
    match d.validate() {
        Err(Error::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn each_field_rule_is_enforced_by_validate_and_sign() {
    let cases: Vec<(&str, Descriptor)> = vec![
        (
            "identity",
            Descriptor {
                identity: small_order_point(),
                ..fixed()
            },
        ),
        (
            "identity",
            Descriptor {
                identity: invalid_point(),
                ..fixed()
            },
        ),
        (
            "onion_key",
            Descriptor {
                onion_key: [0; 32],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec![],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec!["/a".into(); MAX_ADDRESSES + 1],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec![String::new()],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec![format!("/{}", "a".repeat(MAX_ADDRESS_LEN))],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec!["ip4/1.2.3.4".into()],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec!["/ip4/1.2.3.4 /tcp/1".into()],
                ..fixed()
            },
        ),
        (
            "addresses",
            Descriptor {
                addresses: vec!["/dns/caf\u{e9}.example".into()],
                ..fixed()
            },
        ),
        (
            "nickname",
            Descriptor {
                nickname: String::new(),
                ..fixed()
            },
        ),
        (
            "nickname",
            Descriptor {
                nickname: "n".repeat(MAX_NICKNAME_LEN + 1),
                ..fixed()
            },
        ),
        (
            "nickname",
            Descriptor {
                nickname: "bad nick".into(),
                ..fixed()
            },
        ),
        (
            "nickname",
            Descriptor {
                nickname: "r\u{e9}lai".into(),
                ..fixed()
            },
        ),
        (
            "bandwidth",
            Descriptor {
                bandwidth: 0,
                ..fixed()
            },
        ),
        (
            "expires",
            Descriptor {
                expires: PUBLISHED,
                ..fixed()
            },
        ),
        (
            "expires",
            Descriptor {
                expires: PUBLISHED - 1,
                ..fixed()
            },
        ),
        (
            "expires",
            Descriptor {
                expires: PUBLISHED + MAX_LIFETIME_SECS + 1,
                ..fixed()
            },
        ),
        (
            "exit_policy",
            with_rule(AddrPattern::Net("10.0.0.1".parse().unwrap(), 8), (1, 1)),
        ),
        (
            "exit_policy",
            with_rule(AddrPattern::Net("10.0.0.0".parse().unwrap(), 33), (1, 1)),
        ),
        (
            "exit_policy",
            with_rule(AddrPattern::Net("::".parse().unwrap(), 129), (1, 1)),
        ),
        (
            "exit_policy",
            with_rule(
                AddrPattern::Net("::ffff:10.0.0.0".parse().unwrap(), 104),
                (1, 1),
            ),
        ),
        ("exit_policy", with_rule(AddrPattern::Any, (0, 80))),
        ("exit_policy", with_rule(AddrPattern::Any, (443, 80))),
        (
            "exit_policy",
            Descriptor {
                exit_policy: ExitPolicy {
                    rules: vec![any_rule(); MAX_EXIT_RULES + 1],
                },
                ..fixed()
            },
        ),
        (
            "family",
            Descriptor {
                family: members(MAX_FAMILY_MEMBERS + 1),
                ..fixed()
            },
        ),
        (
            "family",
            Descriptor {
                family: vec![member_key(), [1; 32], member_key()],
                ..fixed()
            },
        ),
        (
            "family",
            Descriptor {
                family: vec![member_key(), fixed().identity],
                ..fixed()
            },
        ),
    ];
    for (i, (want, d)) in cases.iter().enumerate() {
        assert_eq!(field_error(d), *want, "case {i}: {d:?}");
        assert!(
            matches!(d.sign(&key()), Err(Error::InvalidField { .. })),
            "case {i}"
        );
    }
}

#[test]
fn limits_are_inclusive() {
    let (signed, d) = maximal();
    assert_eq!(signed.encode().len(), MAX_ENCODED_LEN);
    assert_eq!(MAX_ENCODED_LEN, 4237);
    assert_eq!(
        SignedDescriptor::decode(&signed.encode())
            .unwrap()
            .descriptor(),
        &d
    );
    let week = Descriptor {
        expires: PUBLISHED + MAX_LIFETIME_SECS,
        ..fixed()
    };
    assert_eq!(week.validate(), Ok(()));
    let one_second = Descriptor {
        expires: PUBLISHED + 1,
        ..fixed()
    };
    assert_eq!(one_second.validate(), Ok(()));
}

#[test]
fn decode_rejects_bad_fields_even_when_properly_signed() {
    // Hand-built bodies, signed by the identity key, so only the field rule can reject them.
    let body = hex::decode(fixed_body_hex()).unwrap();
    let nick_at = NICK_LEN_AT;
    let decode_edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = body.clone();
        edit(&mut b);
        SignedDescriptor::decode(&signed_bytes(&b, &key()))
    };
    let field = |r: Result<SignedDescriptor, Error>| match r {
        Err(Error::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField, got {other:?}"),
    };
    assert_eq!(&body[nick_at..nick_at + 7], b"\x06relay7");
    assert_eq!(field(decode_edited(&|b| b[nick_at + 1] = b' ')), "nickname");
    assert_eq!(field(decode_edited(&|b| b[nick_at + 1] = 0xff)), "nickname");
    assert_eq!(field(decode_edited(&|b| b[32..64].fill(0))), "onion_key");
    let bw = BANDWIDTH_AT;
    assert_eq!(
        field(decode_edited(&|b| b[bw..bw + 8].fill(0))),
        "bandwidth"
    );
    let rule2 = RULE_COUNT_AT + 1 + 5; // accept 192.0.2.0/24:80-443
    assert_eq!(body[rule2], 0x05);
    assert_eq!(field(decode_edited(&|b| b[rule2 + 5] = 33)), "exit_policy"); // prefix /33
    assert_eq!(field(decode_edited(&|b| b[rule2 + 4] = 1)), "exit_policy"); // host bits
    assert_eq!(
        field(decode_edited(&|b| b[rule2 + 6..rule2 + 8].fill(0))),
        "exit_policy"
    ); // port 0
    let n = body.len();
    assert_eq!(
        field(decode_edited(
            &|b| b[n - 8..].copy_from_slice(&PUBLISHED.to_be_bytes())
        )),
        "expires"
    );
}

/// `fixed()` with every address wire form, in the order of their tags then text forms.
fn every_address_form() -> Descriptor {
    Descriptor {
        addresses: vec![
            "/ip4/198.51.100.7/udp/443/quic-v1".into(),
            "/ip4/198.51.100.7/tcp/9001".into(),
            "/ip6/2001:db8::7/udp/443/quic-v1".into(),
            "/ip6/::ffff:1.2.3.4/tcp/65535".into(),
            "/dns4/relay.example/tcp/443".into(),
            "/ip4/010.0.0.1/tcp/80".into(), // not canonical: stays text
        ],
        ..fixed()
    }
}

#[test]
fn every_address_form_round_trips_as_the_same_text() {
    let d = every_address_form();
    let signed = d.sign(&key()).unwrap();
    let encoding = signed.encode();
    let addresses_hex = [
        "06",                                        // 6 addresses
        "01c6336407",                                // tag 1, 198.51.100.7
        "01bb",                                      // udp/443/quic-v1
        "02c6336407",                                // tag 2, 198.51.100.7
        "2329",                                      // tcp/9001
        "0320010db8000000000000000000000007",        // tag 3, 2001:db8::7
        "01bb",                                      // udp/443/quic-v1
        "0400000000000000000000ffff01020304",        // tag 4, ::ffff:1.2.3.4
        "ffff",                                      // tcp/65535
        "001b",                                      // tag 0, 27 bytes
        &hex::encode("/dns4/relay.example/tcp/443"), //
        "0015",                                      // tag 0, 21 bytes
        &hex::encode("/ip4/010.0.0.1/tcp/80"),       //
    ]
    .concat();
    let at = ADDR_AT; // the count: body offset ADDR_AT - 1, after the version byte
    assert_eq!(
        hex::encode(&encoding[at..at + addresses_hex.len() / 2]),
        addresses_hex
    );
    let decoded = SignedDescriptor::decode(&encoding).unwrap();
    assert_eq!(decoded.descriptor(), &d);
    assert_eq!(decoded.encode(), encoding);
    for len in 0..encoding.len() {
        assert_eq!(
            SignedDescriptor::decode(&encoding[..len]),
            Err(Error::Incomplete),
            "prefix of {len} bytes"
        );
    }
}

/// The body of `fixed()` with its one address replaced by the wire bytes `address`.
fn body_with_address(address: &[u8]) -> Vec<u8> {
    let body = hex::decode(fixed_body_hex()).unwrap();
    [&body[..ADDR_AT], address, &body[NICK_LEN_AT..]].concat()
}

#[test]
fn decode_rejects_bad_address_encodings_even_when_properly_signed() {
    let decode = |address: &[u8]| {
        SignedDescriptor::decode(&signed_bytes(&body_with_address(address), &key()))
    };
    // The splice itself is sound: the compact form of the original gives the fixed descriptor.
    assert_eq!(
        decode(&hex::decode("017f0000020fa1").unwrap())
            .unwrap()
            .descriptor(),
        &fixed()
    );
    let text = |t: &[u8]| [&[0u8, u8::try_from(t.len()).unwrap()][..], t].concat();
    // A text form is fine for text without a compact form.
    assert_eq!(
        decode(&text(b"/ip4/127.0.0.2/udp/04001/quic-v1"))
            .unwrap()
            .descriptor()
            .addresses,
        ["/ip4/127.0.0.2/udp/04001/quic-v1"]
    );
    let malformed = |what| Err(Error::Malformed { what });
    assert_eq!(
        decode(&text(b"/ip4/127.0.0.2/udp/4001/quic-v1")),
        malformed("address sent as text has a compact form")
    );
    assert_eq!(
        decode(&text(b"/ip6/::1/tcp/80")),
        malformed("address sent as text has a compact form")
    );
    for tag in [5u8, 0x80, 0xff] {
        assert_eq!(
            decode(&[tag, 0x7f, 0, 0, 2, 0x0f, 0xa1]),
            malformed("unknown address tag")
        );
    }
    assert_eq!(
        decode(&[0, 0]),
        malformed("address text length not in 1..=200")
    );
    let too_long = [&[0u8, 201, b'/'][..], &[b'x'; 200]].concat();
    assert_eq!(
        decode(&too_long),
        malformed("address text length not in 1..=200")
    );
    let field = |r: Result<SignedDescriptor, Error>| match r {
        Err(Error::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField, got {other:?}"),
    };
    assert_eq!(field(decode(&text(b"/ip4/\xff"))), "addresses"); // not UTF-8
    assert_eq!(field(decode(&text(b"ip4/1.2.3.4"))), "addresses"); // no leading '/'
    assert_eq!(field(decode(&text(b"/ip4/1.2.3.4 /tcp/1"))), "addresses"); // a space
    // A version 1 address (length, then text) is not a version 2 encoding.
    let v1_style = [&[31u8][..], b"/ip4/127.0.0.2/udp/4001/quic-v1"].concat();
    assert_eq!(decode(&v1_style), malformed("unknown address tag"));
}

#[test]
fn decode_rejects_bad_policy_encodings_as_malformed() {
    let body = hex::decode(fixed_body_hex()).unwrap();
    let count_at = RULE_COUNT_AT;
    assert_eq!(body[count_at], 4);
    let decode_edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = body.clone();
        edit(&mut b);
        SignedDescriptor::decode(&signed_bytes(&b, &key()))
    };
    for flags in [0x08u8, 0x10, 0x80, 0xff] {
        assert_eq!(
            decode_edited(&|b| b[count_at + 1] = flags),
            Err(Error::Malformed {
                what: "reserved exit rule flag bits set"
            })
        );
    }
    assert_eq!(
        decode_edited(&|b| b[count_at] = 65),
        Err(Error::Malformed {
            what: "exit policy has more than 64 rules"
        })
    );
}

fn any_rule() -> ExitRule {
    ExitRule {
        accept: true,
        addr: AddrPattern::Any,
        ports: (1, 65535),
    }
}

fn with_rule(addr: AddrPattern, ports: (u16, u16)) -> Descriptor {
    Descriptor {
        exit_policy: ExitPolicy {
            rules: vec![ExitRule {
                accept: true,
                addr,
                ports,
            }],
        },
        ..fixed()
    }
}

/// The neutral element (y = 1): a valid encoding, but of a small-order point.
fn small_order_point() -> [u8; 32] {
    let mut b = [0; 32];
    b[0] = 1;
    b
}

/// 32 bytes that do not decode to a curve point.
fn invalid_point() -> [u8; 32] {
    (0u8..=255)
        .map(|i| [i; 32])
        .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
        .unwrap()
}

/// `n` distinct family members (none of them `fixed()`'s identity).
fn members(n: usize) -> Vec<[u8; 32]> {
    (0..n).map(|i| [u8::try_from(i).unwrap(); 32]).collect()
}

/// A descriptor with every variable field at its maximum size.
fn maximal() -> (SignedDescriptor, Descriptor) {
    let rule = ExitRule {
        accept: true,
        addr: AddrPattern::Net("2001:db8::".parse().unwrap(), 32),
        ports: (1, 65535),
    };
    let d = Descriptor {
        addresses: (0..MAX_ADDRESSES)
            .map(|i| format!("/{i}{}", "x".repeat(MAX_ADDRESS_LEN - 2)))
            .collect(),
        nickname: "N".repeat(MAX_NICKNAME_LEN),
        exit_policy: ExitPolicy {
            rules: vec![rule; MAX_EXIT_RULES],
        },
        family: members(MAX_FAMILY_MEMBERS),
        ..fixed()
    };
    (d.sign(&key()).unwrap(), d)
}

/// Offset of the family count in `fixed()`'s body: after the four rules (1 + 4, 1 + 4 + 1 + 4,
/// 1 + 16 + 1 + 4, 1 + 4 bytes).
const FAMILY_AT: usize = RULE_COUNT_AT + 1 + 5 + 10 + 22 + 5;

#[test]
fn family_wire_form_and_rejects() {
    let body = hex::decode(fixed_body_hex()).unwrap();
    assert_eq!(body[FAMILY_AT], 1);
    assert_eq!(
        hex::encode(&body[FAMILY_AT + 1..FAMILY_AT + 33]),
        MEMBER_HEX
    );
    let with_family = |family: &[[u8; 32]]| {
        let mut b = body[..FAMILY_AT].to_vec();
        b.push(u8::try_from(family.len()).unwrap());
        for m in family {
            b.extend_from_slice(m);
        }
        b.extend_from_slice(&body[FAMILY_AT + 33..]);
        SignedDescriptor::decode(&signed_bytes(&b, &key()))
    };
    // No member and the most members both decode to the value they encode.
    for n in [0, 1, MAX_FAMILY_MEMBERS] {
        let d = with_family(&members(n)).unwrap();
        assert_eq!(d.descriptor().family, members(n));
        let again = Descriptor {
            family: members(n),
            ..fixed()
        }
        .sign(&key())
        .unwrap();
        assert_eq!(d, again);
    }
    // Properly signed, but each breaks a rule: too many, a repeat, the relay itself.
    let mut too_many = body[..FAMILY_AT].to_vec();
    too_many.push(u8::try_from(MAX_FAMILY_MEMBERS + 1).unwrap());
    too_many.extend_from_slice(&members(MAX_FAMILY_MEMBERS + 1).concat());
    too_many.extend_from_slice(&body[FAMILY_AT + 33..]);
    assert_eq!(
        SignedDescriptor::decode(&signed_bytes(&too_many, &key())),
        Err(Error::Malformed {
            what: "family has more than 32 members"
        })
    );
    for family in [
        vec![member_key(), member_key()],
        vec![[1; 32], member_key(), [1; 32]],
        vec![fixed().identity],
    ] {
        match with_family(&family) {
            Err(Error::InvalidField { field, .. }) => assert_eq!(field, "family"),
            other => panic!("{family:?}: expected InvalidField, got {other:?}"),
        }
    }
    // A count with too few members after it is cut short, not malformed: the published and
    // expires bytes are read as a member, then the signature runs out.
    let mut short = body[..FAMILY_AT].to_vec();
    short.push(2);
    short.extend_from_slice(&member_key());
    assert_eq!(
        SignedDescriptor::decode(&[&[DESCRIPTOR_VERSION][..], &short].concat()),
        Err(Error::Incomplete)
    );
}
