//! `Client`: the distribution API operations — resolve, manifests, streamed and verified
//! blob downloads with resume, blob upload and cross-repository mount, manifest push,
//! login and logout.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cairn_ir::{Digest, Platform};
use sha2::{Digest as _, Sha256};
use ureq::http::{Method, Response};

use crate::error::redact_url;
use crate::manifest::{self, Descriptor, Parsed, ACCEPT_MANIFESTS};
use crate::reference::{api_host, host_of_auth_key};
use crate::transport::{read_small, status_error, Body, Req, Stats, Target, Transport};
use crate::{credentials, Credential, Reference, RegistryConfig, RegistryError};

/// The largest manifest or index the client reads (distribution's own limit is 4 MiB).
const MAX_MANIFEST: u64 = 8 << 20;
/// The largest image config `resolve` downloads.
const MAX_CONFIG: u64 = 32 << 20;
/// How many times a blob download is retried after its connection dropped.
const BLOB_RETRIES: u32 = 5;

/// A registry client. Cloning is cheap (one `Arc`); clones share connections, tokens and
/// cached credentials, and every method can be called from many threads at once.
#[derive(Clone)]
pub struct Client {
    t: Arc<Transport>,
}

/// What `resolve` found for a reference and platform.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The normalized reference that was resolved.
    pub reference: Reference,
    /// The digest the reference points to: the index for multi-platform images, else the
    /// manifest. `reference.with_digest(digest)` resolves to the same image again.
    pub digest: Digest,
    /// The platform-specific image manifest.
    pub manifest_digest: Digest,
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
}

/// A manifest or index as the registry serves it (`get_manifest`).
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// What `head_manifest` learns without downloading the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

fn pull_scope(r: &Reference) -> Vec<String> {
    vec![format!("repository:{}:pull", r.repository)]
}

fn push_scope(r: &Reference) -> Vec<String> {
    vec![format!("repository:{}:pull,push", r.repository)]
}

/// The path (with its query) of the `rel="next"` target of a `Link` header, as the
/// distribution API sends it (`</v2/x/tags/list?last=b&n=2>; rel="next"`); an absolute
/// URL gives its path.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let path = match target.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => target,
        };
        is_next.then(|| path.to_string())
    })
}

fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether a pull from one endpoint should go on to the next (a mirror failed).
fn try_next(e: &RegistryError) -> bool {
    match e {
        RegistryError::Connection { .. } | RegistryError::Tls { .. } | RegistryError::NotFound { .. } => true,
        RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => true,
        RegistryError::Http { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// How one attempt at a blob download ended badly.
enum Attempt {
    /// The connection failed or dropped: resume from what was received.
    Retry(RegistryError),
    Fatal(RegistryError),
}

impl Client {
    /// A client for `config`. Nothing is read or contacted until the first request.
    pub fn new(config: RegistryConfig) -> Client {
        Client { t: Arc::new(Transport::new(config)) }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.t.config
    }

    /// Counters of the requests this client (and its clones) sent so far.
    pub fn stats(&self) -> Stats {
        let c = &self.t.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            blob_gets: c.blob_gets.load(Ordering::Relaxed),
            token_fetches: c.token_fetches.load(Ordering::Relaxed),
        }
    }

    /// The API hosts to pull `r` from: its mirrors in order, then the registry itself.
    fn pull_hosts(&self, r: &Reference) -> Vec<String> {
        let mut hosts = self.t.config.mirrors_of(&r.registry);
        hosts.push(api_host(&r.registry).to_string());
        hosts
    }

    /// Runs `op` against each pull host until one succeeds or fails for a reason another
    /// host would not fix; the last error is returned.
    fn with_pull_hosts<T>(
        &self,
        r: &Reference,
        mut op: impl FnMut(&str) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let hosts = self.pull_hosts(r);
        let mut last = None;
        for (i, host) in hosts.iter().enumerate() {
            match op(host) {
                Ok(v) => return Ok(v),
                Err(e) if i + 1 < hosts.len() && try_next(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least the registry itself"))
    }

    /// The digest, media type and size of what `reference` points to, from a `HEAD`
    /// (`Docker-Content-Digest`); falls back to `get_manifest` when the registry sends no
    /// digest.
    pub fn head_manifest(&self, reference: &Reference) -> Result<ManifestHead, RegistryError> {
        let head = self.with_pull_hosts(reference, |host| {
            let path = format!("/v2/{}/manifests/{}", reference.repository, reference.manifest_ref());
            let req =
                Req::new(Method::HEAD, host, path.clone(), pull_scope(reference)).header("Accept", ACCEPT_MANIFESTS);
            let resp = self.t.send(req)?;
            if resp.status().as_u16() != 200 {
                let url = format!("{}{path}", self.t.base(host));
                return Err(status_error(resp, host, &url, &reference.to_string(), &reference.repository));
            }
            let digest = header(&resp, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
            let media_type =
                header(&resp, "content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
            let size = header(&resp, "content-length").and_then(|s| s.parse().ok()).unwrap_or(0);
            Ok(digest.map(|digest| ManifestHead { digest, media_type, size }))
        })?;
        match head {
            Some(h) => Ok(h),
            None => {
                let m = self.get_manifest(reference)?;
                Ok(ManifestHead { digest: m.digest, media_type: m.media_type, size: m.bytes.len() as u64 })
            }
        }
    }

    /// The manifest or index `reference` points to, as served. Its digest is computed from
    /// the bytes and must equal the reference's digest when it has one.
    pub fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        self.with_pull_hosts(reference, |host| self.get_manifest_from(host, reference))
    }

    fn get_manifest_from(&self, host: &str, reference: &Reference) -> Result<Manifest, RegistryError> {
        let path = format!("/v2/{}/manifests/{}", reference.repository, reference.manifest_ref());
        let req = Req::new(Method::GET, host, path.clone(), pull_scope(reference)).header("Accept", ACCEPT_MANIFESTS);
        let resp = self.t.send(req)?;
        if resp.status().as_u16() != 200 {
            let url = format!("{}{path}", self.t.base(host));
            return Err(status_error(resp, host, &url, &reference.to_string(), &reference.repository));
        }
        let content_type = header(&resp, "content-type").map(str::to_string);
        let bytes = read_small(resp, MAX_MANIFEST).map_err(|e| with_registry(e, host))?;
        let digest = Digest::of(&bytes);
        if let Some(want) = reference.digest {
            if want != digest {
                return Err(RegistryError::DigestMismatch { digest: want, got: digest });
            }
        }
        let media_type = manifest::media_type_of(content_type.as_deref(), &bytes)?;
        Ok(Manifest { digest, media_type, bytes })
    }

    /// The tags of `reference`'s repository (`GET /v2/<name>/tags/list`), every page: a
    /// registry that paginates sends a `Link: <…>; rel="next"` header, which is followed.
    /// An unknown repository has none.
    pub fn list_tags(&self, reference: &Reference) -> Result<Vec<String>, RegistryError> {
        self.list_tags_paged(reference, None)
    }

    /// [`Client::list_tags`] asking for pages of at most `page` tags (`?n=`).
    pub fn list_tags_paged(&self, reference: &Reference, page: Option<u32>) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        /// More pages than any registry needs; a server that loops stops here.
        const MAX_PAGES: usize = 10_000;
        self.with_pull_hosts(reference, |host| {
            let first = format!("/v2/{}/tags/list", reference.repository);
            let mut path = match page {
                Some(n) => format!("{first}?n={n}"),
                None => first.clone(),
            };
            let mut all = Vec::new();
            for _ in 0..MAX_PAGES {
                let resp = self.t.send(Req::new(Method::GET, host, path.clone(), pull_scope(reference)))?;
                match resp.status().as_u16() {
                    200 => {}
                    404 if all.is_empty() => return Ok(Vec::new()),
                    _ => {
                        let url = format!("{}{path}", self.t.base(host));
                        return Err(status_error(resp, host, &url, &reference.name(), &reference.repository));
                    }
                }
                let next = header(&resp, "link").map(str::to_string);
                let bytes = read_small(resp, MAX_MANIFEST).map_err(|e| with_registry(e, host))?;
                let t: Tags = serde_json::from_slice(&bytes)
                    .map_err(|e| RegistryError::Invalid(format!("Malformed tag list from `{host}`: {e}")))?;
                all.extend(t.tags.unwrap_or_default());
                match next.as_deref().and_then(next_link) {
                    Some(p) if p.starts_with(&first) => path = p,
                    Some(p) => {
                        return Err(RegistryError::Invalid(format!(
                            "`{host}` sent a next page of tags outside the repository: `{p}`"
                        )))
                    }
                    None => return Ok(all),
                }
            }
            Err(RegistryError::Invalid(format!("`{host}` sent more than {MAX_PAGES} pages of tags")))
        })
    }

    /// Resolves `reference` to one image: follows an index to the manifest for `platform`
    /// (the host's when `None`; `arm64` is `arm64/v8`, amd64 has no variant), then reads
    /// the config. No layer is downloaded.
    pub fn resolve(&self, reference: &Reference, platform: Option<&Platform>) -> Result<Resolved, RegistryError> {
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let top = self.get_manifest(reference)?;
        let mut m = top.clone();
        // An index may point to another index; two levels are plenty.
        for _ in 0..3 {
            match manifest::parse(&m.media_type, &m.bytes)? {
                Parsed::Index(entries) => {
                    let entry = manifest::select_platform(&entries, &want).ok_or_else(|| {
                        RegistryError::NoMatchingPlatform {
                            reference: reference.to_string(),
                            platform: want.to_string(),
                            available: manifest::platforms_of(&entries),
                        }
                    })?;
                    m = self.get_manifest(&reference.with_digest(entry.digest))?;
                }
                Parsed::Manifest { config, layers } => {
                    if config.size > MAX_CONFIG {
                        return Err(RegistryError::Invalid(format!(
                            "The config of `{reference}` is {} bytes, more than cairn reads ({MAX_CONFIG})",
                            config.size
                        )));
                    }
                    let mut bytes = Vec::with_capacity(config.size as usize);
                    self.fetch_blob(reference, &config, &mut bytes, &|_, _| {})?;
                    return Ok(Resolved {
                        reference: reference.clone(),
                        digest: top.digest,
                        manifest_digest: m.digest,
                        media_type: m.media_type,
                        manifest: m.bytes,
                        config: bytes,
                        config_digest: config.digest,
                        layers,
                    });
                }
            }
        }
        Err(RegistryError::Invalid(format!("`{reference}` nests indexes more than two deep")))
    }

    /// Streams the blob `desc` of `reference`'s repository into `dest`, hashing as it goes,
    /// and calls `progress(done, total)` after each chunk. A dropped connection is resumed
    /// with an HTTP `Range` request (restarted when the registry ignores ranges), up to 5
    /// times. The result is `Ok` only when exactly `desc.size` bytes with digest
    /// `desc.digest` were written; on `Err` `dest` holds partial or wrong bytes, so write
    /// to a temporary file and keep it only on `Ok`.
    pub fn fetch_blob(
        &self,
        reference: &Reference,
        desc: &Descriptor,
        dest: &mut dyn Write,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), RegistryError> {
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        self.with_pull_hosts(reference, |host| {
            if done > 0 {
                // Bytes from another host are already written: never mix endpoints.
                return Err(RegistryError::Connection {
                    registry: host.to_string(),
                    message: format!("blob `{}` broke off at byte {done}", desc.digest),
                });
            }
            let mut attempts = 0;
            loop {
                match self.blob_attempt(host, reference, desc, &mut done, &mut hasher, dest, progress) {
                    Ok(()) => return Ok(()),
                    Err(Attempt::Retry(_)) if attempts < BLOB_RETRIES => {
                        attempts += 1;
                        std::thread::sleep(Duration::from_millis(100 * u64::from(attempts)));
                    }
                    Err(Attempt::Retry(e)) => {
                        return Err(RegistryError::Connection {
                            registry: host.to_string(),
                            message: format!(
                                "downloading blob `{}` failed {} times, last: {e}",
                                desc.digest,
                                attempts + 1
                            ),
                        })
                    }
                    Err(Attempt::Fatal(e)) => return Err(e),
                }
            }
        })?;
        let got = Digest(hasher.finalize().into());
        if got != desc.digest {
            return Err(RegistryError::DigestMismatch { digest: desc.digest, got });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn blob_attempt(
        &self,
        host: &str,
        reference: &Reference,
        desc: &Descriptor,
        done: &mut u64,
        hasher: &mut Sha256,
        dest: &mut dyn Write,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), Attempt> {
        let path = format!("/v2/{}/blobs/{}", reference.repository, desc.digest);
        let mut req = Req::new(Method::GET, host, path.clone(), pull_scope(reference));
        if *done > 0 {
            req = req.header("Range", format!("bytes={done}-"));
        }
        self.t.counters.blob_gets.fetch_add(1, Ordering::Relaxed);
        let resp = self.t.send(req).map_err(|e| match e {
            RegistryError::Connection { .. } => Attempt::Retry(e),
            e => Attempt::Fatal(e),
        })?;
        let status = resp.status().as_u16();
        let mut skip = 0u64;
        match status {
            200 => skip = *done,
            206 => {
                let start = header(&resp, "content-range")
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(*done) {
                    return Err(Attempt::Fatal(RegistryError::Invalid(format!(
                        "Registry `{host}` answered a range request for blob `{}` with the wrong range",
                        desc.digest
                    ))));
                }
            }
            416 if *done == desc.size => return Ok(()),
            s if s >= 500 || s == 429 => {
                let url = format!("{}{path}", self.t.base(host));
                return Err(Attempt::Retry(status_error(
                    resp,
                    host,
                    &url,
                    &format!("{}@{}", reference.name(), desc.digest),
                    &reference.repository,
                )));
            }
            _ => {
                let url = format!("{}{path}", self.t.base(host));
                let what = format!("{}@{}", reference.name(), desc.digest);
                return Err(Attempt::Fatal(status_error(resp, host, &url, &what, &reference.repository)));
            }
        }
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) if *done < desc.size => {
                    return Err(Attempt::Retry(RegistryError::Connection {
                        registry: host.to_string(),
                        message: format!("connection closed after {done} of {} bytes", desc.size),
                    }))
                }
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Attempt::Retry(RegistryError::Connection {
                        registry: host.to_string(),
                        message: e.to_string(),
                    }))
                }
            };
            let mut chunk = &buf[..n];
            if skip > 0 {
                let s = skip.min(n as u64) as usize;
                skip -= s as u64;
                chunk = &chunk[s..];
            }
            if chunk.is_empty() {
                continue;
            }
            if *done + chunk.len() as u64 > desc.size {
                return Err(Attempt::Fatal(RegistryError::Invalid(format!(
                    "Blob `{}` is larger than the {} bytes its descriptor says",
                    desc.digest, desc.size
                ))));
            }
            hasher.update(chunk);
            dest.write_all(chunk).map_err(|e| {
                Attempt::Fatal(RegistryError::Io { action: format!("write blob `{}`", desc.digest), source: e })
            })?;
            *done += chunk.len() as u64;
            progress(*done, desc.size);
        }
    }

    /// Whether the blob `digest` is in `reference`'s repository (`HEAD`).
    pub fn blob_exists(&self, reference: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let host = api_host(&reference.registry);
        let path = format!("/v2/{}/blobs/{digest}", reference.repository);
        let resp = self.t.send(Req::new(Method::HEAD, host, path.clone(), push_scope(reference)))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => {
                let url = format!("{}{path}", self.t.base(host));
                Err(status_error(resp, host, &url, &format!("{}@{digest}", reference.name()), &reference.repository))
            }
        }
    }

    /// Mounts the blob `digest` from `from` (another repository of the same registry) into
    /// `reference`'s repository instead of uploading it. `Ok(false)` when the registry
    /// declined (it answers with an upload session, which is cancelled) or the two
    /// repositories are on different registries: upload the blob then.
    pub fn mount_blob(&self, reference: &Reference, digest: &Digest, from: &Reference) -> Result<bool, RegistryError> {
        if from.registry != reference.registry {
            return Ok(false);
        }
        let host = api_host(&reference.registry);
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            reference.repository,
            crate::transport::encode(&from.repository)
        );
        let mut scopes = push_scope(reference);
        scopes.push(format!("repository:{}:pull", from.repository));
        let resp = self.t.send(Req::new(Method::POST, host, path.clone(), scopes))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                if let Some(loc) = header(&resp, "location").map(str::to_string) {
                    let url = self.location(host, &loc);
                    let mut cancel = Req::new(Method::DELETE, host, String::new(), push_scope(reference));
                    cancel.target = Target::Url(url);
                    let _ = self.t.send(cancel);
                }
                Ok(false)
            }
            _ => {
                let url = format!("{}{path}", self.t.base(host));
                Err(status_error(resp, host, &url, &format!("{}@{digest}", reference.name()), &reference.repository))
            }
        }
    }

    /// An upload `Location` as an absolute URL (registries send absolute or host-relative).
    fn location(&self, host: &str, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            format!("{}{loc}", self.t.base(host))
        } else {
            format!("{}/{loc}", self.t.base(host))
        }
    }

    /// Uploads `size` bytes from `data` as the blob `digest` to `reference`'s repository:
    /// `POST …/blobs/uploads/`, then one `PUT` of the whole blob with `?digest=`. The
    /// registry verifies the digest.
    pub fn upload_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), RegistryError> {
        let host = api_host(&reference.registry);
        let path = format!("/v2/{}/blobs/uploads/", reference.repository);
        let resp = self.t.send(Req::new(Method::POST, host, path.clone(), push_scope(reference)))?;
        let what = format!("{}@{digest}", reference.name());
        if resp.status().as_u16() != 202 {
            let url = format!("{}{path}", self.t.base(host));
            return Err(status_error(resp, host, &url, &what, &reference.repository));
        }
        let loc = header(&resp, "location").map(str::to_string).ok_or_else(|| {
            RegistryError::Invalid(format!("Registry `{host}` started an upload without a `Location`"))
        })?;
        let mut url = self.location(host, &loc);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", crate::transport::encode(&digest.to_string())));
        let mut put = Req::new(Method::PUT, host, String::new(), push_scope(reference))
            .header("Content-Type", "application/octet-stream");
        put.target = Target::Url(url.clone());
        put.body = Body::Reader(data, size);
        let resp = self.t.send(put)?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(status_error(resp, host, &redact_url(&url), &what, &reference.repository)),
        }
    }

    /// Pushes a manifest or index under `reference` (its tag, else its digest) and returns
    /// its digest.
    pub fn put_manifest(&self, reference: &Reference, media_type: &str, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let host = api_host(&reference.registry);
        let digest = Digest::of(bytes);
        let target = match (&reference.tag, &reference.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => digest.to_string(),
        };
        let path = format!("/v2/{}/manifests/{target}", reference.repository);
        let mut req =
            Req::new(Method::PUT, host, path.clone(), push_scope(reference)).header("Content-Type", media_type);
        req.body = Body::Bytes(bytes);
        let resp = self.t.send(req)?;
        match resp.status().as_u16() {
            201 | 200 | 204 => {
                if let Some(d) = header(&resp, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok()) {
                    if d != digest {
                        return Err(RegistryError::DigestMismatch { digest, got: d });
                    }
                }
                Ok(digest)
            }
            _ => {
                let url = format!("{}{path}", self.t.base(host));
                Err(status_error(resp, host, &url, &reference.to_string(), &reference.repository))
            }
        }
    }

    /// Checks `username`/`password` against `registry` (`docker.io`, `host:port`, or a
    /// `config.json` key like `https://index.docker.io/v1/`), then stores them as docker
    /// does: with the `credHelpers`/`credsStore` helper when one is configured, else base64
    /// in `config.json`'s `auths`. Wrong credentials store nothing.
    pub fn login(&self, registry: &str, username: &str, password: &str) -> Result<(), RegistryError> {
        let registry = host_of_auth_key(registry);
        let host = api_host(&registry).to_string();
        let cred = Credential::basic(username, password);
        let mut req = Req::new(Method::GET, &host, "/v2/".to_string(), Vec::new());
        req.credential = Some(&cred);
        let resp = self.t.send(req)?;
        let status = resp.status().as_u16();
        if status != 200 {
            let url = format!("{}/v2/", self.t.base(&host));
            return Err(status_error(resp, &host, &url, &registry, ""));
        }
        credentials::store(&self.t.config, &registry, username, password)?;
        self.t.forget(&host);
        Ok(())
    }

    /// Removes the stored credentials of `registry` (helper `erase` and `auths`); `false`
    /// when there were none.
    pub fn logout(&self, registry: &str) -> Result<bool, RegistryError> {
        let registry = host_of_auth_key(registry);
        let removed = credentials::erase(&self.t.config, &registry)?;
        self.t.forget(api_host(&registry));
        Ok(removed)
    }

    /// The credential configured for `registry`, for callers that want to show who is
    /// logged in. `Debug` on it never shows the secret.
    pub fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        self.t.credential(api_host(&host_of_auth_key(registry)))
    }
}

/// Fills in the registry of a connection error raised while reading a body.
fn with_registry(e: RegistryError, host: &str) -> RegistryError {
    match e {
        RegistryError::Connection { registry, message } if registry.is_empty() => {
            RegistryError::Connection { registry: host.to_string(), message }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn next_link_reads_distribution_link_headers() {
        let l = r#"</v2/team/c/tags/list?last=b&n=2>; rel="next""#;
        assert_eq!(next_link(l).as_deref(), Some("/v2/team/c/tags/list?last=b&n=2"));
        let abs = r#"<https://r.example/v2/c/tags/list?n=2&last=x>; rel="next""#;
        assert_eq!(next_link(abs).as_deref(), Some("/v2/c/tags/list?n=2&last=x"));
        assert_eq!(next_link(r#"</v2/c/tags/list?last=b>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
