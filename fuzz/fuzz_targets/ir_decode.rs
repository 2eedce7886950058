//! The IR loader on any bytes: a typed error or a Definition that validates and encodes
//! back to bytes that load again, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(def) = cairn_ir::decode_definition(data) {
        cairn_ir::validate(&def).expect("a loaded Definition is valid");
        let bytes = cairn_ir::encode_definition(&def);
        let again = cairn_ir::decode_definition(&bytes).expect("its own encoding loads");
        assert_eq!(again, def);
    }
});
