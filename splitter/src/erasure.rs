//! Erasure coding of short messages with Reed-Solomon (`reed-solomon-simd`): a message becomes
//! `n` shards of which any `k` rebuild it, so a lost or slow strand costs no round trip.
//!
//! The message is cut into `k` original shards of `shard_len` bytes (the message length divided
//! by `k`, rounded up to an even number, since the library needs even shards; at least 2), the
//! last ones zero-padded; `n - k` recovery shards follow. The original length travels in every
//! shard's header, so padding is stripped on decode. Not here: the wire form of a shard
//! ([`crate::wire::Shard`]) or grouping shards by sequence number ([`crate::receiver`]).

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::Error;
use crate::wire::ERASURE_HEADER_LEN;

/// How a message is coded: `k` of `n` shards rebuild it, `1 <= k < n <= 255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureParams {
    k: u8,
    n: u8,
}

impl ErasureParams {
    /// Checks `1 <= k < n <= 255` (and that the Reed-Solomon library supports the counts).
    pub fn new(k: usize, n: usize) -> Result<Self, Error> {
        match (u8::try_from(k), u8::try_from(n)) {
            (Ok(k8), Ok(n8)) if k8 >= 1 && k8 < n8 && ReedSolomonEncoder::supports(k, n - k) => {
                Ok(Self { k: k8, n: n8 })
            }
            _ => Err(Error::ErasureParams { k, n }),
        }
    }

    /// Shards needed to rebuild.
    pub fn k(self) -> usize {
        usize::from(self.k)
    }

    /// Shards in total.
    pub fn n(self) -> usize {
        usize::from(self.n)
    }

    /// The shard length for a message of `message_len` bytes: even and at least 2.
    pub fn shard_len(self, message_len: usize) -> usize {
        let per = message_len.div_ceil(self.k()).max(2);
        per + per % 2
    }

    /// The longest message whose shards fit fragments of `max_payload` bytes.
    pub fn max_message_len(self, max_payload: usize) -> usize {
        self.k() * (max_payload.saturating_sub(ERASURE_HEADER_LEN) & !1)
    }
}

/// Codes `message` into `params.n()` shards of equal, even length: the originals first, then
/// the recovery shards.
pub fn encode(message: &[u8], params: ErasureParams) -> Result<Vec<Vec<u8>>, Error> {
    let shard_len = params.shard_len(message.len());
    let mut shards: Vec<Vec<u8>> = (0..params.k())
        .map(|i| {
            let start = (i * shard_len).min(message.len());
            let end = ((i + 1) * shard_len).min(message.len());
            let mut shard = message[start..end].to_vec();
            shard.resize(shard_len, 0);
            shard
        })
        .collect();
    let fail = |source| Error::Erasure {
        context: "encoding a message",
        source,
    };
    let mut encoder =
        ReedSolomonEncoder::new(params.k(), params.n() - params.k(), shard_len).map_err(fail)?;
    for shard in &shards {
        encoder.add_original_shard(shard).map_err(fail)?;
    }
    let result = encoder.encode().map_err(fail)?;
    shards.extend(result.recovery_iter().map(<[u8]>::to_vec));
    Ok(shards)
}

/// Rebuilds a `message_len`-byte message from at least `k` distinct shards `(index, bytes)` of
/// equal, even length.
pub fn decode<'a>(
    params: ErasureParams,
    message_len: usize,
    shards: impl IntoIterator<Item = (usize, &'a [u8])> + Clone,
) -> Result<Vec<u8>, Error> {
    let (k, n) = (params.k(), params.n());
    let Some((_, first)) = shards.clone().into_iter().next() else {
        return Err(Error::Erasure {
            context: "decoding without shards",
            source: reed_solomon_simd::Error::NotEnoughShards {
                original_count: k,
                original_received_count: 0,
                recovery_received_count: 0,
            },
        });
    };
    let shard_len = first.len();
    if message_len > k * shard_len {
        return Err(Error::MessageTooLong {
            len: message_len,
            max: k * shard_len,
        });
    }
    let mut originals: Vec<Option<&[u8]>> = vec![None; k];
    for (index, shard) in shards.clone() {
        if index < k {
            originals[index] = Some(shard);
        }
    }
    let fail = |source| Error::Erasure {
        context: "decoding a message",
        source,
    };
    let mut message = Vec::with_capacity(k * shard_len);
    if originals.iter().all(Option::is_some) {
        for shard in originals.iter().flatten() {
            message.extend_from_slice(shard);
        }
    } else {
        let mut decoder = ReedSolomonDecoder::new(k, n - k, shard_len).map_err(fail)?;
        for (index, shard) in shards {
            if index < k {
                decoder.add_original_shard(index, shard).map_err(fail)?;
            } else {
                decoder.add_recovery_shard(index - k, shard).map_err(fail)?;
            }
        }
        let restored = decoder.decode().map_err(fail)?;
        for (index, original) in originals.iter().enumerate() {
            let shard = original.or_else(|| restored.restored_original(index));
            let Some(shard) = shard else {
                return Err(fail(reed_solomon_simd::Error::NotEnoughShards {
                    original_count: k,
                    original_received_count: 0,
                    recovery_received_count: 0,
                }));
            };
            message.extend_from_slice(shard);
        }
    }
    message.truncate(message_len);
    Ok(message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn params_are_checked() {
        assert!(ErasureParams::new(2, 3).is_ok());
        assert!(ErasureParams::new(254, 255).is_ok());
        for (k, n) in [(0, 3), (3, 3), (4, 3), (1, 256), (300, 400)] {
            assert!(
                matches!(ErasureParams::new(k, n), Err(Error::ErasureParams { .. })),
                "{k} {n}"
            );
        }
        let p = ErasureParams::new(3, 5).unwrap();
        assert_eq!((p.k(), p.n()), (3, 5));
        assert_eq!(p.shard_len(0), 2);
        assert_eq!(p.shard_len(7), 4);
        assert_eq!(p.shard_len(10), 4);
        assert_eq!(p.shard_len(13), 6);
        assert_eq!(p.max_message_len(3840), 3 * 3832);
    }

    #[test]
    fn any_k_of_n_rebuild_the_exact_message() {
        for (k, n, len) in [
            (1, 2, 0),
            (2, 3, 1),
            (2, 3, 1000),
            (3, 5, 9999),
            (4, 6, 12345),
        ] {
            let params = ErasureParams::new(k, n).unwrap();
            let msg = message(len);
            let shards = encode(&msg, params).unwrap();
            assert_eq!(shards.len(), n);
            // every subset of exactly k shards
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize != k {
                    continue;
                }
                let subset: Vec<(usize, &[u8])> = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| (i, shards[i].as_slice()))
                    .collect();
                assert_eq!(
                    decode(params, len, subset.iter().copied()).unwrap(),
                    msg,
                    "k={k} n={n} mask={mask:b}"
                );
            }
        }
    }

    #[test]
    fn too_few_shards_or_bad_length_is_a_clear_error() {
        let params = ErasureParams::new(3, 5).unwrap();
        let shards = encode(&message(100), params).unwrap();
        let two = [(0, shards[0].as_slice()), (4, shards[4].as_slice())];
        assert!(matches!(
            decode(params, 100, two),
            Err(Error::Erasure { .. })
        ));
        assert!(matches!(
            decode(params, 100, []),
            Err(Error::Erasure { .. })
        ));
        let all: Vec<(usize, &[u8])> = shards
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.as_slice()))
            .collect();
        assert!(matches!(
            decode(params, 1000, all.iter().copied()),
            Err(Error::MessageTooLong { .. })
        ));
    }
}
