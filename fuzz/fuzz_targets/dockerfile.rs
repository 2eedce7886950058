//! The Dockerfile scanner, grammar and compiler on any text: an error or a graph, never a
//! panic, a hang or a stack overflow.
#![no_main]

use cairn_compiler::dockerfile::CompileOptions;
use cairn_compiler::resolver::NoImages;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(df) = cairn_grammar::parse("Dockerfile", text) {
        let _ = cairn_grammar::json::to_json(&df);
        if let Ok(c) = cairn_compiler::dockerfile::compile(&df, text, &CompileOptions::new("Dockerfile"), &NoImages) {
            let def = cairn_compiler::passes::optimize(&c.graph).to_definition();
            // What the compiler produces, the IR loader accepts.
            let bytes = cairn_ir::encode_definition(&def);
            cairn_ir::decode_definition(&bytes).expect("the compiler's own IR loads");
        }
    }
});
