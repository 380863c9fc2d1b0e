//! The wire form of one relay address (descriptor format 2): a tag byte, then either a compact
//! binary form of the four common multiaddr shapes or the multiaddr text.
//!
//! | tag | text form | then |
//! |---|---|---|
//! | 1 | `/ip4/A.B.C.D/udp/PORT/quic-v1` | 4 bytes IPv4, 2 bytes port |
//! | 2 | `/ip4/A.B.C.D/tcp/PORT` | 4 bytes IPv4, 2 bytes port |
//! | 3 | `/ip6/ADDR/udp/PORT/quic-v1` | 16 bytes IPv6, 2 bytes port |
//! | 4 | `/ip6/ADDR/tcp/PORT` | 16 bytes IPv6, 2 bytes port |
//! | 0 | anything else | u8 length 1..=200, then the text |
//!
//! The encoding is canonical both ways. A compact tag is used exactly when the text is the
//! canonical rendering of the compact value (IPv4 dotted decimal without leading zeros, IPv6 as
//! [`std::net::Ipv6Addr`] displays it, the port in decimal without leading zeros), and the decoder
//! refuses a text form that has a compact one, so decoding then encoding gives the same bytes.
//! This is not a multiaddr parser: any other text is carried as is, and the text rules (printable
//! ASCII, leading `/`) are [`Descriptor::validate`](super::Descriptor::validate)'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{MAX_ADDRESS_LEN, invalid};
use crate::Error;
use braid_codec::{Reader, Writer};

/// Tag of an address carried as text.
const TAG_TEXT: u8 = 0;
/// Tag of `/ip4/A.B.C.D/udp/PORT/quic-v1`.
const TAG_IP4_QUIC: u8 = 1;
/// Tag of `/ip4/A.B.C.D/tcp/PORT`.
const TAG_IP4_TCP: u8 = 2;
/// Tag of `/ip6/ADDR/udp/PORT/quic-v1`.
const TAG_IP6_QUIC: u8 = 3;
/// Tag of `/ip6/ADDR/tcp/PORT`.
const TAG_IP6_TCP: u8 = 4;

/// The longest wire form of one address: tag, length byte, [`MAX_ADDRESS_LEN`] bytes of text.
pub(crate) const MAX_WIRE_LEN: usize = 1 + 1 + MAX_ADDRESS_LEN;

/// The transport of a compact address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// `/udp/PORT/quic-v1`.
    Quic,
    /// `/tcp/PORT`.
    Tcp,
}

/// An address with a compact wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Compact {
    ip: IpAddr,
    transport: Transport,
    port: u16,
}

impl Compact {
    /// The value behind `text` if `text` is exactly its canonical rendering, else `None`.
    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix('/')?.split('/');
        let ip = match (parts.next()?, parts.next()?) {
            ("ip4", ip) => IpAddr::V4(ip.parse::<Ipv4Addr>().ok()?),
            ("ip6", ip) => IpAddr::V6(ip.parse::<Ipv6Addr>().ok()?),
            _ => return None,
        };
        let (transport, port) = match (parts.next()?, parts.next()?, parts.next()) {
            ("udp", port, Some("quic-v1")) => (Transport::Quic, port),
            ("tcp", port, None) => (Transport::Tcp, port),
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        let compact = Self {
            ip,
            transport,
            port: port.parse().ok()?,
        };
        // Parsing is lenient in places (`+80`, and whatever std accepts); only the exact
        // canonical text gets the compact form, so the decoder's rendering gives it back.
        (compact.to_text() == text).then_some(compact)
    }

    /// The canonical text.
    fn to_text(self) -> String {
        let Self {
            ip,
            transport,
            port,
        } = self;
        let proto = match ip {
            IpAddr::V4(_) => "ip4",
            IpAddr::V6(_) => "ip6",
        };
        match transport {
            Transport::Quic => format!("/{proto}/{ip}/udp/{port}/quic-v1"),
            Transport::Tcp => format!("/{proto}/{ip}/tcp/{port}"),
        }
    }

    /// The tag byte of this shape.
    fn tag(self) -> u8 {
        match (self.ip, self.transport) {
            (IpAddr::V4(_), Transport::Quic) => TAG_IP4_QUIC,
            (IpAddr::V4(_), Transport::Tcp) => TAG_IP4_TCP,
            (IpAddr::V6(_), Transport::Quic) => TAG_IP6_QUIC,
            (IpAddr::V6(_), Transport::Tcp) => TAG_IP6_TCP,
        }
    }
}

/// Appends the wire form of `addr`: compact when it has one, else tag 0 and the text.
/// `InvalidField` only for text longer than a u8 length (a validated descriptor never has it).
pub(crate) fn encode(w: &mut Writer, addr: &str) -> Result<(), Error> {
    match Compact::from_text(addr) {
        Some(compact) => {
            w.u8(compact.tag());
            match compact.ip {
                IpAddr::V4(ip) => w.bytes(&ip.octets()),
                IpAddr::V6(ip) => w.bytes(&ip.octets()),
            }
            w.u16(compact.port);
        }
        None => {
            w.u8(TAG_TEXT);
            w.u8_prefixed(addr.as_bytes(), usize::from(u8::MAX), "address text")
                .map_err(|_| invalid("addresses", "too long to encode"))?;
        }
    }
    Ok(())
}

/// Reads one address written by [`encode`] and gives its text. `Malformed` for an unknown tag, a
/// text length outside 1..=200, or a text that has a compact form; `InvalidField` for text that
/// is not UTF-8. The other text rules are left to `Descriptor::validate`.
pub(crate) fn decode(r: &mut Reader<'_>) -> Result<String, Error> {
    let tag = r.u8("address tag")?;
    let (ip, transport) = match tag {
        TAG_TEXT => return decode_text(r),
        TAG_IP4_QUIC => (
            IpAddr::V4(Ipv4Addr::from(r.array("IPv4 address")?)),
            Transport::Quic,
        ),
        TAG_IP4_TCP => (
            IpAddr::V4(Ipv4Addr::from(r.array("IPv4 address")?)),
            Transport::Tcp,
        ),
        TAG_IP6_QUIC => (
            IpAddr::V6(Ipv6Addr::from(r.array("IPv6 address")?)),
            Transport::Quic,
        ),
        TAG_IP6_TCP => (
            IpAddr::V6(Ipv6Addr::from(r.array("IPv6 address")?)),
            Transport::Tcp,
        ),
        _ => {
            return Err(Error::Malformed {
                what: "unknown address tag",
            });
        }
    };
    let port = r.u16("address port")?;
    Ok(Compact {
        ip,
        transport,
        port,
    }
    .to_text())
}

/// The text form after tag 0: length byte, then the bytes.
fn decode_text(r: &mut Reader<'_>) -> Result<String, Error> {
    let len = usize::from(r.u8("address text length")?);
    if !(1..=MAX_ADDRESS_LEN).contains(&len) {
        return Err(Error::Malformed {
            what: "address text length not in 1..=200",
        });
    }
    let bytes = r.take(len, "address text")?;
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("addresses", "not UTF-8"))?;
    if Compact::from_text(text).is_some() {
        return Err(Error::Malformed {
            what: "address sent as text has a compact form",
        });
    }
    Ok(text.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn encoded(addr: &str) -> Vec<u8> {
        let mut w = Writer::default();
        encode(&mut w, addr).unwrap();
        w.finish()
    }

    fn decoded(bytes: &[u8]) -> Result<String, Error> {
        let mut r = Reader::new(bytes);
        let text = decode(&mut r)?;
        r.finish("trailing")?;
        Ok(text)
    }

    /// Encodes `addr`, checks the hex, decodes back to the same text, and checks every strict
    /// prefix is `Incomplete`.
    fn round_trip(addr: &str, want_hex: &str) {
        let bytes = encoded(addr);
        assert_eq!(hex::encode(&bytes), want_hex, "{addr}");
        assert_eq!(decoded(&bytes).as_deref(), Ok(addr));
        for len in 0..bytes.len() {
            assert_eq!(
                decode(&mut Reader::new(&bytes[..len])),
                Err(Error::Incomplete),
                "{addr}: prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn each_tag_round_trips() {
        round_trip("/ip4/127.0.0.2/udp/4001/quic-v1", "017f0000020fa1");
        round_trip("/ip4/192.0.2.7/tcp/443", "02c000020701bb");
        round_trip(
            "/ip6/2001:db8::1/udp/65535/quic-v1",
            "0320010db8000000000000000000000001ffff",
        );
        round_trip("/ip6/::/tcp/0", &format!("04{}", "00".repeat(18)));
        round_trip(
            "/dns/example.com/tcp/1",
            &format!("0016{}", hex::encode("/dns/example.com/tcp/1")),
        );
        round_trip("/", "00012f");
    }

    #[test]
    fn extremes_round_trip() {
        round_trip("/ip4/0.0.0.0/tcp/0", &format!("02{}", "00".repeat(6)));
        round_trip("/ip4/255.255.255.255/udp/65535/quic-v1", "01ffffffffffff");
        round_trip(
            "/ip6/::ffff:1.2.3.4/tcp/1",
            "0400000000000000000000ffff010203040001",
        );
        let longest = format!("/{}", "x".repeat(MAX_ADDRESS_LEN - 1));
        round_trip(&longest, &format!("00c8{}", hex::encode(&longest)));
    }

    #[test]
    fn non_canonical_or_other_text_stays_text() {
        for addr in [
            "/ip4/010.0.0.1/udp/4001/quic-v1", // leading zero in an octet
            "/ip4/1.2.3.4/udp/080/quic-v1",    // leading zero in the port
            "/ip4/1.2.3.4/tcp/+80",            // sign on the port
            "/ip4/1.2.3.4/tcp/65536",          // port out of range
            "/ip6/0:0:0:0:0:0:0:1/tcp/9",      // `::1` is the canonical form
            "/ip6/2001:DB8::1/tcp/9",          // upper case hex
            "/ip6/::1%1/tcp/9",                // zone id
            "/ip4/1.2.3.4/udp/1/quic",         // another QUIC version
            "/ip4/1.2.3.4/tcp/1/",             // trailing slash
            "/ip4/1.2.3.4/tcp/1/p2p/x",        // more components
            "/ip4/1.2.3.4/udp/1/quic-v1/x",    // more components
            "/ip4/1.2.3.4/udp/1",              // plain UDP
            "/ip4/1.2.3/tcp/1",                // short address
            "/ip6/1.2.3.4/tcp/1",              // IPv4 under ip6
            "/ip4/::1/tcp/1",                  // IPv6 under ip4
            "/ip4/1.2.3.4",                    // no transport
            "/ip4",                            // no address
        ] {
            let bytes = encoded(addr);
            assert_eq!(bytes[0], TAG_TEXT, "{addr}");
            assert_eq!(usize::from(bytes[1]), addr.len(), "{addr}");
            assert_eq!(&bytes[2..], addr.as_bytes(), "{addr}");
            assert_eq!(decoded(&bytes).as_deref(), Ok(addr), "{addr}");
        }
    }

    #[test]
    fn compactable_text_is_malformed() {
        for addr in [
            "/ip4/127.0.0.2/udp/4001/quic-v1",
            "/ip4/1.2.3.4/tcp/80",
            "/ip6/::1/udp/1/quic-v1",
            "/ip6/::1/tcp/9",
        ] {
            let mut bytes = vec![TAG_TEXT, u8::try_from(addr.len()).unwrap()];
            bytes.extend_from_slice(addr.as_bytes());
            assert_eq!(
                decoded(&bytes),
                Err(Error::Malformed {
                    what: "address sent as text has a compact form"
                }),
                "{addr}"
            );
        }
    }

    #[test]
    fn unknown_tags_are_malformed() {
        for tag in [5u8, 6, 0x7f, 0xff] {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&[0; 18]);
            assert_eq!(
                decode(&mut Reader::new(&bytes)),
                Err(Error::Malformed {
                    what: "unknown address tag"
                })
            );
            // Known to be wrong from the tag alone.
            assert_eq!(
                decode(&mut Reader::new(&[tag])),
                Err(Error::Malformed {
                    what: "unknown address tag"
                })
            );
        }
    }

    #[test]
    fn bad_text_lengths_are_malformed() {
        let bad_len = Err(Error::Malformed {
            what: "address text length not in 1..=200",
        });
        assert_eq!(decoded(&[TAG_TEXT, 0]), bad_len);
        for len in [201u8, 255] {
            let mut bytes = vec![TAG_TEXT, len];
            bytes.resize(2 + usize::from(len), b'x');
            assert_eq!(decoded(&bytes), bad_len);
            // Known to be wrong from the length byte alone.
            assert_eq!(decoded(&[TAG_TEXT, len]), bad_len);
        }
    }

    #[test]
    fn non_utf8_text_is_an_invalid_field() {
        assert!(matches!(
            decoded(&[TAG_TEXT, 2, b'/', 0xff]),
            Err(Error::InvalidField {
                field: "addresses",
                ..
            })
        ));
    }

    #[test]
    fn trailing_bytes_are_left_to_the_caller() {
        let mut r = Reader::new(&[TAG_IP4_TCP, 1, 2, 3, 4, 0, 80, 0xaa]);
        assert_eq!(decode(&mut r).as_deref(), Ok("/ip4/1.2.3.4/tcp/80"));
        assert_eq!(r.u8("trailing byte"), Ok(0xaa));
    }

    #[test]
    fn encoder_refuses_text_past_a_u8_length() {
        let mut w = Writer::default();
        assert!(matches!(
            encode(&mut w, &format!("/{}", "x".repeat(255))),
            Err(Error::InvalidField {
                field: "addresses",
                ..
            })
        ));
    }

    /// Random compact payloads and random texts over a multiaddr-ish alphabet: whatever decodes
    /// encodes back to the same bytes (the codec's canonical rule, which the descriptor fuzz
    /// target cannot reach past the signature check).
    #[test]
    fn whatever_decodes_re_encodes_to_the_same_bytes() {
        // SplitMix64: deterministic, and no dependency on an RNG crate's API.
        let mut state = 7u64;
        let mut next = |below: usize| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            usize::try_from((z ^ (z >> 31)) % below as u64).unwrap()
        };
        let alphabet = b"/ip46udtcquic-v0123456789.:abcdef";
        let (mut texts, mut compact) = (0, 0);
        for _ in 0..20_000 {
            let tag = u8::try_from(next(6)).unwrap();
            let mut bytes = vec![tag];
            if tag == TAG_TEXT {
                let len = 1 + next(40);
                bytes.push(u8::try_from(len).unwrap());
                bytes.extend((0..len).map(|_| alphabet[next(alphabet.len())]));
            } else {
                bytes.extend((0..18).map(|_| u8::try_from(next(256)).unwrap()));
            }
            let mut r = Reader::new(&bytes);
            let Ok(text) = decode(&mut r) else { continue };
            let used = r.position();
            assert_eq!(encoded(&text), &bytes[..used], "{text}");
            if tag == TAG_TEXT {
                texts += 1;
            } else {
                compact += 1;
            }
        }
        assert!(
            texts > 1000 && compact > 1000,
            "{texts} texts, {compact} compact"
        );
        // Random text almost never spells a canonical compact address; these do, and are refused.
        for text in ["/ip4/1.2.3.4/tcp/5", "/ip6/::a/udp/1/quic-v1"] {
            let bytes = [
                &[TAG_TEXT, u8::try_from(text.len()).unwrap()][..],
                text.as_bytes(),
            ]
            .concat();
            assert!(matches!(decoded(&bytes), Err(Error::Malformed { .. })));
        }
    }

    #[test]
    fn longest_wire_form_is_text() {
        let longest = format!("/{}", "x".repeat(MAX_ADDRESS_LEN - 1));
        assert_eq!(encoded(&longest).len(), MAX_WIRE_LEN);
        assert!(encoded("/ip6/1:2:3:4:5:6:7:8/udp/65535/quic-v1").len() < MAX_WIRE_LEN);
    }
}
