//! Fuzzes the `Reader`: a script of operations runs over arbitrary bytes, and none may panic.
//!
//! The first input byte says how many script bytes follow; the rest is the reader's input. The
//! script's first byte picks the mode (stream prefix or complete body); each further byte picks
//! one operation and a small argument. After every operation the invariants must hold:
//! - a failed read consumes nothing; a successful one consumes exactly what it returns;
//! - only a prefix reader returns `Incomplete`, with `needed >= 1`, and its `needed` is exactly
//!   the shortfall: a fixed-size read succeeds once that many more bytes are there;
//! - a complete reader reports running out as `Truncated`, never `Incomplete`;
//! - `consumed_since` and `rest` always agree with the position.

#![no_main]

use braid_codec::{Error, Problem, Reader};
use libfuzzer_sys::fuzz_target;

/// Runs operation `op` on `r`; returns the number of bytes a success consumed, or the error.
fn run(r: &mut Reader<'_>, op: u8) -> Result<usize, Error> {
    let arg = usize::from(op >> 3);
    match op & 0x07 {
        0 => r.u8("u8").map(|_| 1),
        1 => r.u16("u16").map(|_| 2),
        2 => r.u32("u32").map(|_| 4),
        3 => r.u64("u64").map(|_| 8),
        4 => r.take(arg, "take").map(<[u8]>::len),
        5 => match arg % 3 {
            0 => r.u8_prefixed(arg, "u8 field").map(|b| 1 + b.len()),
            1 => r.u16_prefixed(arg * 64, "u16 field").map(|b| 2 + b.len()),
            _ => r.u32_prefixed(arg * 4096, "u32 field").map(|b| 4 + b.len()),
        },
        6 => r.array::<3>("array").map(|_| 3),
        _ => match arg % 3 {
            0 => r.zero_padding("padding").map(|()| 0),
            1 => r.expect_end("end").map(|()| 0),
            _ => Ok(r.take_rest().len()),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&script_len, rest)) = data.split_first() else {
        return;
    };
    let (script, input) = rest.split_at(usize::from(script_len).min(rest.len()));
    let Some((&mode, ops)) = script.split_first() else {
        return;
    };
    let complete = mode & 1 == 1;
    let mut r = if complete {
        Reader::complete(input)
    } else {
        Reader::new(input)
    };
    for &op in ops {
        let before = r.position();
        let probe = r.clone();
        match run(&mut r, op) {
            Ok(used) => {
                let zero_padding = op & 0x07 == 7 && (op >> 3) % 3 == 0;
                if !zero_padding {
                    assert_eq!(r.position(), before + used);
                }
                assert_eq!(r.consumed_since(before).len(), r.position() - before);
            }
            Err(e) => {
                assert_eq!(r.position(), before, "a failed read consumed bytes");
                match e {
                    Error::Incomplete { needed, .. } => {
                        assert!(!complete, "a complete body reported Incomplete");
                        assert!(needed >= 1);
                        // Exactly `needed` more bytes make the same operation succeed, or fail
                        // for another reason than running out. (A length prefix completed
                        // that way may announce more bytes still, so prefixed fields are left
                        // out.)
                        let mut longer = probe.rest().to_vec();
                        longer.resize(longer.len() + needed.min(1 << 16), 0);
                        if needed <= 1 << 16 && op & 0x07 != 5 {
                            let again = run(&mut Reader::new(&longer), op);
                            assert!(!matches!(again, Err(Error::Incomplete { .. })), "{e:?}");
                        }
                    }
                    Error::Malformed {
                        problem: Problem::Truncated { needed },
                        ..
                    } => {
                        assert!(complete, "a prefix reported Truncated");
                        assert!(needed >= 1);
                    }
                    _ => {}
                }
            }
        }
        assert!(r.position() <= input.len());
        assert_eq!(r.rest().len(), input.len() - r.position());
        assert_eq!(r.remaining(), r.rest().len());
    }
});
