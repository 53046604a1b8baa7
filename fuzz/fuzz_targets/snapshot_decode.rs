//! Arbitrary bytes as a snapshot: decoding returns a state or an error,
//! never panics; a decoded state re-encodes to bytes that decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = detcd_core::snapshot::decode(data) {
        let again = detcd_core::snapshot::encode(&state);
        let restored = detcd_core::snapshot::decode(&again).expect("re-encoded snapshot decodes");
        assert_eq!(restored.hash(), state.hash());
    }
});
