//! TLS with a CA the test generates: trusted through a certs.d-style directory
//! (`DIR/127.0.0.1:PORT/ca.crt`), refused without it, and an insecure listing skips
//! verification.

use cairn_ir::Platform;
use cairn_registry::{Client, RegistryError};

use crate::common::*;

#[test]
fn a_registry_ca_from_certs_d_is_trusted_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(dir.path());
    let reg = Registry::start(Auth::None, Some((cert, key)));

    // No CA for the host: the handshake fails and the error says TLS and names the host.
    let untrusted = Client::new(config(dir.path(), &[]));
    let e = untrusted.head_manifest(&reg.reference("tls/app:1")).unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!("TLS with registry `{}` failed", reg.host)), "{e}");

    let host_dir = dir.path().join("certs.d").join(&reg.host);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::copy(&ca, host_dir.join("ca.crt")).unwrap();
    let client = Client::new(config(dir.path(), &[]));
    let r = reg.reference("tls/app:1");
    let pushed = push_image(&client, &r, &[bytes(60, 20_000)], &Platform::parse("linux/amd64").unwrap());
    let got = client.resolve(&r, Some(&Platform::parse("linux/amd64").unwrap())).unwrap();
    assert_eq!(got.digest, pushed.digest);
    assert_eq!(fetch(&client, &r, &got.layers[0]), bytes(60, 20_000));

    // Listed as insecure: HTTPS without verification, no CA needed.
    let insecure = Client::new(config(&dir.path().join("elsewhere"), &[&reg.host]));
    assert_eq!(insecure.head_manifest(&r).unwrap().digest, pushed.digest);
}
