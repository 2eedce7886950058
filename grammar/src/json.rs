//! The public JSON shape of the AST (`cairn compile --emit ast --format json`), documented
//! in README.md.

use crate::ast::Dockerfile;

/// Renders the AST in the documented JSON shape.
pub fn to_json(doc: &Dockerfile) -> serde_json::Value {
    let _ = doc;
    unimplemented!("json::to_json is being written")
}
