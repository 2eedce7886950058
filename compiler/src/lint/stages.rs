//! Stage names: StageNameCasing, DuplicateStageName, ReservedStageName. BuildKit compares
//! stage names lower-cased (it lower-cases them when it parses FROM), and reports the
//! original spelling only for the casing rule.

use cairn_grammar::ast::Dockerfile;

use super::{stages, Warning, DUPLICATE_STAGE_NAME, RESERVED_STAGE_NAME, STAGE_NAME_CASING};

pub(super) fn check(df: &Dockerfile, out: &mut Vec<Warning>) {
    let (_, stages) = stages(df);
    let mut seen = std::collections::HashSet::new();
    for s in &stages {
        let Some(name) = &s.name else { continue };
        let lower = name.to_lowercase();
        if *name != lower {
            out.push(Warning::at(&STAGE_NAME_CASING, format!("Stage name '{name}' should be lowercase"), s.from));
        }
        if matches!(lower.as_str(), "context" | "scratch") {
            let msg = format!("Stage name should not use the same name as reserved stage \"{lower}\"");
            out.push(Warning::at(&RESERVED_STAGE_NAME, msg, s.from));
        }
        if !seen.insert(lower.clone()) {
            let msg = format!("Duplicate stage name \"{lower}\", stage names should be unique");
            out.push(Warning::at(&DUPLICATE_STAGE_NAME, msg, s.from));
        }
    }
}
