//! `SignedDescriptor::decode` on arbitrary bytes: never panics, and whatever it accepts
//! re-encodes to exactly the input (the encoding is canonical), keeps its declared family
//! within the rules, and alone never forms a family (the both-ways rule needs two relays).
#![no_main]

use braid_directory::descriptor::MAX_FAMILY_MEMBERS;
use braid_directory::{Families, SignedDescriptor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = SignedDescriptor::decode(data) {
        assert_eq!(d.encode(), data);
        assert_eq!(d.descriptor().validate(), Ok(()));
        let _ = d.check_fresh(d.descriptor().published);
        let _ = d.descriptor().is_exit();
        let family = &d.descriptor().family;
        assert!(family.len() <= MAX_FAMILY_MEMBERS);
        assert!(!family.contains(d.identity()));
        assert!(Families::new([d.descriptor()]).is_empty());
    }
});
