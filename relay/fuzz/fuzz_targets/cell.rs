//! Fuzzes the link cell codec: `Cell::decode` on arbitrary bytes must never panic, and a cell it
//! accepts must re-encode to exactly the bytes it was read from.

#![no_main]

use braid_relay::cell::{CELL_LEN, Cell};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((cell, used)) = Cell::decode(data) {
        assert_eq!(used, CELL_LEN);
        assert_eq!(cell.encode(), &data[..CELL_LEN]);
        // Reading the reason of any cell is total (unknown bytes are kept as values).
        assert_eq!(cell.destroy_reason().to_byte(), data[2]);
    }
});
