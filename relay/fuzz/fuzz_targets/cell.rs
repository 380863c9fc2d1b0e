//! Fuzzes the link cell codec: `Cell::decode` on arbitrary bytes must never panic, and a cell it
//! accepts must re-encode to exactly the bytes it was read from.
//!
//! Random inputs rarely reach 4096 bytes, so each input is also tried as a cell body behind a
//! valid version byte, zero-padded to a full cell: that must always parse and round-trip.

#![no_main]

use braid_relay::cell::{CELL_LEN, CELL_VERSION, Cell};
use libfuzzer_sys::fuzz_target;

fn check_accepted(wire: &[u8], cell: &Cell, used: usize) {
    assert_eq!(used, CELL_LEN);
    assert_eq!(cell.encode(), &wire[..CELL_LEN]);
    assert_eq!(cell.kind.to_byte(), wire[1]);
    // Reading the reason of any cell is total (unknown bytes are kept as values).
    assert_eq!(cell.destroy_reason().to_byte(), wire[2]);
}

fuzz_target!(|data: &[u8]| {
    if let Ok((cell, used)) = Cell::decode(data) {
        check_accepted(data, &cell, used);
    }

    let mut wire = vec![0u8; CELL_LEN];
    wire[0] = CELL_VERSION;
    let n = data.len().min(CELL_LEN - 1);
    wire[1..1 + n].copy_from_slice(&data[..n]);
    let (cell, used) = Cell::decode(&wire).expect("a full cell with version 1 always parses");
    check_accepted(&wire, &cell, used);
});
