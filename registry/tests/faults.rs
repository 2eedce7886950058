//! Faults between client and registry, injected by a TCP proxy: a connection cut in the
//! middle of a blob is resumed with a `Range` request; a flipped byte is a
//! `DigestMismatch` that names the blob.

use cairn_ir::{Digest, Platform};
use cairn_registry::{Client, RegistryError};

use crate::common::*;

#[test]
fn a_connection_cut_mid_blob_is_resumed() {
    let reg = Registry::start(Auth::None, None);
    let proxy = Proxy::start(&reg.host);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&proxy.host]));
    let r = reference_via(&proxy, "faults/cut:1");
    let layer = bytes(50, 400_000);
    let pushed = push_image(&client, &r, std::slice::from_ref(&layer), &Platform::parse("linux/amd64").unwrap());
    let desc = &pushed.layers[0];

    proxy.arm(Fault::CutAfter { digest: desc.digest, bytes: 100_000 });
    let before = client.stats().blob_gets;
    let mut got = Vec::new();
    client.fetch_blob(&r, desc, &mut got, &|_, _| {}).unwrap();
    assert_eq!(Digest::of(&got), desc.digest);
    assert!(got == layer);
    assert_eq!(client.stats().blob_gets - before, 2, "one cut GET, one resumed GET");
    let gets: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET ") && r.contains(&desc.digest.to_string()))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let range = gets[1].lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(str::to_string));
    let start: u64 =
        range.as_deref().and_then(|r| r.strip_suffix('-')).and_then(|s| s.parse().ok()).expect("a Range request");
    assert!(start > 0 && start < desc.size, "resumed from byte {start}");
}

#[test]
fn a_corrupted_blob_is_rejected_naming_it() {
    let reg = Registry::start(Auth::None, None);
    let proxy = Proxy::start(&reg.host);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&proxy.host]));
    let r = reference_via(&proxy, "faults/flip:1");
    let pushed = push_image(&client, &r, &[bytes(51, 70_000)], &Platform::parse("linux/amd64").unwrap());
    let desc = &pushed.layers[0];

    proxy.arm(Fault::Flip { digest: desc.digest });
    let e = client.fetch_blob(&r, desc, &mut Vec::new(), &|_, _| {}).unwrap_err();
    let RegistryError::DigestMismatch { digest, got } = &e else { panic!("expected a digest mismatch, got {e:?}") };
    assert_eq!(*digest, desc.digest);
    assert_ne!(*got, desc.digest);
    assert!(e.to_string().starts_with(&format!("Blob `{}` failed verification", desc.digest)), "{e}");
    // Nothing is wrong with the registry's copy: the next download is fine.
    assert_eq!(Digest::of(&fetch(&client, &r, desc)), desc.digest);
}

/// A reference on the registry behind `proxy`.
fn reference_via(proxy: &Proxy, name: &str) -> cairn_registry::Reference {
    cairn_registry::Reference::parse(&format!("{}/{name}", proxy.host)).unwrap()
}
