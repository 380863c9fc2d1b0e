//! The replicated-state codecs on arbitrary bytes: `Command::decode` and `StateImage::decode`
//! never panic, and whatever they accept re-encodes to exactly the input.
#![no_main]

use braid_registry::state::{Command, MAX_STATE_DESCRIPTORS, StateImage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = Command::decode(data) {
        assert_eq!(command.encode(), data);
    }
    if let Ok(image) = StateImage::decode(data, MAX_STATE_DESCRIPTORS) {
        assert_eq!(image.encode(), data);
        assert!(
            image
                .descriptors
                .iter()
                .all(|d| d.descriptor().expires > image.clock)
        );
    }
});
