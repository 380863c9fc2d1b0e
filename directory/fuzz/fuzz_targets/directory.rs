//! `Directory::from_text` on arbitrary UTF-8: never panics; an accepted directory round-trips
//! through `to_text`.
#![no_main]

use braid_directory::Directory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(dir) = Directory::from_text(text) {
        assert_eq!(
            Directory::from_text(&dir.to_text()).expect("to_text output parses"),
            dir
        );
        let _ = dir.fresh(0);
    }
});
