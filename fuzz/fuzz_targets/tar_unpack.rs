//! `ADD` of a local tar on any bytes: whatever the archive holds (`..` names, absolute
//! names, links out, devices), nothing is written outside the destination.
#![no_main]

use std::path::Path;

use cairn_runtime::solve::archive::{unpack, ArchiveKind};
use libfuzzer_sys::fuzz_target;

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let root = std::env::temp_dir().join(format!("cairn-fuzz-tar-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (dest, outside) = (root.join("a/dest"), root.join("a/outside"));
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let tar = root.join("in.tar");
    std::fs::write(&tar, data).unwrap();
    let _ = unpack(&tar, ArchiveKind::Tar, &dest, Some((0, 0)));
    assert_eq!(count(&outside), 0, "an entry was written beside the destination");
    assert_eq!(count(&root.join("a")), 2, "an entry was written above the destination");
    assert_eq!(count(&root), 2, "an entry was written above the destination");
    let _ = std::process::Command::new("chmod").arg("-R").arg("u+rwx").arg(&root).status();
    let _ = std::fs::remove_dir_all(&root);
});
