//! `SignedDescriptor::decode` on arbitrary bytes: never panics, and whatever it accepts
//! re-encodes to exactly the input (the encoding is canonical).
#![no_main]

use braid_directory::SignedDescriptor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = SignedDescriptor::decode(data) {
        assert_eq!(d.encode(), data);
        assert_eq!(d.descriptor().validate(), Ok(()));
        let _ = d.check_fresh(d.descriptor().published);
        let _ = d.descriptor().is_exit();
    }
});
