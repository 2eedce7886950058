//! The HTTP layer under `Client`: one ureq agent per registry host with its TLS roots,
//! HTTPS-then-HTTP for insecure hosts, and authentication (challenge, token endpoint,
//! token cache, retry on 401). Nothing here logs; credentials only ever travel in
//! `Authorization` headers.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ureq::http::{Method, Response};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::auth::{parse_challenges, parse_token_answer, Challenge, Token};
use crate::error::{error_message, redact_url};
use crate::{credentials, Credential, RegistryConfig, RegistryError};

/// A body for `Transport::send`; only `Reader` cannot be sent twice (after a 401).
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read, u64),
}

/// Where a request goes: a path on the registry host, or an absolute URL the registry
/// handed out (an upload `Location`).
pub(crate) enum Target {
    Path(String),
    Url(String),
}

/// One request to a registry host.
pub(crate) struct Req<'a> {
    pub method: Method,
    /// The API host (`registry-1.docker.io`, `127.0.0.1:5000`).
    pub host: &'a str,
    pub target: Target,
    /// Token scopes (`repository:NAME:pull,push`), empty for `/v2/`.
    pub scopes: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    /// Use this credential instead of the configured one (`login` verifies with it).
    pub credential: Option<&'a Credential>,
}

impl<'a> Req<'a> {
    pub fn new(method: Method, host: &'a str, path: String, scopes: Vec<String>) -> Req<'a> {
        Req {
            method,
            host,
            target: Target::Path(path),
            scopes,
            headers: Vec::new(),
            body: Body::Empty,
            credential: None,
        }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Req<'a> {
        self.headers.push((k, v.into()));
        self
    }
}

/// Request counters, for progress and tests ("a cached rebuild makes no blob GET").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request sent to a registry or token endpoint (retries included).
    pub requests: u64,
    /// `GET …/blobs/…` requests, resumptions included.
    pub blob_gets: u64,
    /// Requests to a token endpoint.
    pub token_fetches: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub blob_gets: AtomicU64,
    pub token_fetches: AtomicU64,
}

pub(crate) struct Transport {
    pub config: RegistryConfig,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    plain: ureq::Agent,
    /// Insecure hosts whose scheme has been found (`http` or `https`).
    schemes: Mutex<HashMap<String, &'static str>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    credentials: Mutex<HashMap<String, Option<Credential>>>,
    system_roots: OnceLock<Option<Arc<Vec<Certificate<'static>>>>>,
    pub counters: Counters,
}

fn agent_config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(10)
        .max_idle_connections_per_host(8)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
}

/// The `Host[:port]` part of an `http(s)://` URL.
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

impl Transport {
    pub fn new(config: RegistryConfig) -> Transport {
        Transport {
            config,
            agents: Mutex::new(HashMap::new()),
            plain: agent_config().build().into(),
            schemes: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            system_roots: OnceLock::new(),
            counters: Counters::default(),
        }
    }

    /// The system CA bundle, read once; `None` when no bundle file exists.
    fn system_roots(&self) -> Option<Arc<Vec<Certificate<'static>>>> {
        self.system_roots
            .get_or_init(|| {
                let candidates: Vec<std::path::PathBuf> = match &self.config.ca_bundle {
                    Some(p) => vec![p.clone()],
                    None => std::env::var_os("SSL_CERT_FILE")
                        .map(std::path::PathBuf::from)
                        .into_iter()
                        .chain(
                            ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].map(Into::into),
                        )
                        .collect(),
                };
                let bytes = candidates.iter().find_map(|p| std::fs::read(p).ok())?;
                Some(Arc::new(pem_certs(&bytes)))
            })
            .clone()
    }

    /// The HTTPS agent for `host`: unverified for insecure hosts, else the system roots
    /// plus `CERTS_DIR/HOST/*.crt`.
    fn agent(&self, host: &str) -> Result<ureq::Agent, RegistryError> {
        if let Some(a) = self.agents.lock().unwrap().get(host) {
            return Ok(a.clone());
        }
        let tls = if self.config.is_insecure(host) {
            TlsConfig::builder().disable_verification(true).build()
        } else {
            let mut extra = Vec::new();
            for dir in &self.config.certs_dirs {
                let Ok(entries) = std::fs::read_dir(dir.join(host)) else { continue };
                let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                files.sort();
                for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "crt")) {
                    let bytes = std::fs::read(&f).map_err(|e| RegistryError::Tls {
                        registry: host.to_string(),
                        message: format!("cannot read `{}`: {e}", f.display()),
                    })?;
                    let certs = pem_certs(&bytes);
                    if certs.is_empty() {
                        return Err(RegistryError::Tls {
                            registry: host.to_string(),
                            message: format!("`{}` holds no PEM certificate", f.display()),
                        });
                    }
                    extra.extend(certs);
                }
            }
            let roots = match (self.system_roots(), extra.is_empty()) {
                (None, true) => RootCerts::WebPki,
                (Some(sys), true) => RootCerts::Specific(sys),
                (sys, false) => {
                    let mut all: Vec<Certificate<'static>> = sys.map(|s| s.as_ref().clone()).unwrap_or_default();
                    all.extend(extra);
                    RootCerts::Specific(Arc::new(all))
                }
            };
            TlsConfig::builder().root_certs(roots).build()
        };
        let agent: ureq::Agent = agent_config().tls_config(tls).build().into();
        self.agents.lock().unwrap().insert(host.to_string(), agent.clone());
        Ok(agent)
    }

    fn scheme(&self, host: &str) -> &'static str {
        self.schemes.lock().unwrap().get(host).copied().unwrap_or("https")
    }

    /// `scheme://host` as requests to `host` currently use it.
    pub fn base(&self, host: &str) -> String {
        format!("{}://{host}", self.scheme(host))
    }

    /// The configured credential for the API host `host` (cached per client).
    pub fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(c) = self.credentials.lock().unwrap().get(host) {
            return Ok(c.clone());
        }
        let c = credentials::lookup(&self.config, host)?;
        self.credentials.lock().unwrap().insert(host.to_string(), c.clone());
        Ok(c)
    }

    /// Forgets cached credentials and tokens of `host` (after login or logout).
    pub fn forget(&self, host: &str) {
        self.credentials.lock().unwrap().remove(host);
        self.tokens.lock().unwrap().retain(|(h, _), _| h != host);
    }

    /// Sends `req`, authenticating as the registry asks: a 401 stores the challenge, gets
    /// a fresh token (or Basic credentials) and sends once more. For insecure hosts a
    /// failed HTTPS connection falls back to plain HTTP.
    pub fn send(&self, mut req: Req<'_>) -> Result<Response<ureq::Body>, RegistryError> {
        let mut refreshed = false;
        loop {
            let auth = self.authorization(&req, refreshed)?;
            let resp = match self.send_once(&mut req, auth.as_deref()) {
                Err(e) if self.should_fall_back(req.host, &req.target) => {
                    self.schemes.lock().unwrap().insert(req.host.to_string(), "http");
                    match self.send_once(&mut req, auth.as_deref()) {
                        Ok(r) => r,
                        Err(_) => {
                            // Neither worked: report the HTTPS error, and try HTTPS next time.
                            self.schemes.lock().unwrap().remove(req.host);
                            return Err(e);
                        }
                    }
                }
                r => {
                    if r.is_ok() && self.config.is_insecure(req.host) {
                        let scheme = self.scheme(req.host);
                        self.schemes.lock().unwrap().insert(req.host.to_string(), scheme);
                    }
                    r?
                }
            };
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            let chosen = challenges
                .iter()
                .find(|c| c.scheme == "bearer")
                .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
                .cloned();
            let replayable = !matches!(req.body, Body::Reader(..));
            match chosen {
                Some(c) if !refreshed && replayable => {
                    self.challenges.lock().unwrap().insert(req.host.to_string(), c);
                    self.tokens.lock().unwrap().remove(&(req.host.to_string(), req.scopes.join(" ")));
                    refreshed = true;
                }
                _ => return Err(RegistryError::Unauthorized { registry: req.host.to_string() }),
            }
        }
    }

    /// Whether a failed request to `host` should be tried again over plain HTTP.
    fn should_fall_back(&self, host: &str, target: &Target) -> bool {
        matches!(target, Target::Path(_))
            && self.config.is_insecure(host)
            && !self.schemes.lock().unwrap().contains_key(host)
    }

    fn send_once(&self, req: &mut Req<'_>, auth: Option<&str>) -> Result<Response<ureq::Body>, RegistryError> {
        let url = match &req.target {
            Target::Path(p) => format!("{}{p}", self.base(req.host)),
            Target::Url(u) => u.clone(),
        };
        let host = url_host(&url).to_string();
        let agent = if url.starts_with("http://") {
            if !self.config.is_insecure(&host) && !self.config.is_insecure(req.host) {
                return Err(RegistryError::Invalid(format!(
                    "Registry `{}` sent a plain-HTTP URL `{}`; allowed only for insecure registries",
                    req.host,
                    redact_url(&url)
                )));
            }
            self.plain.clone()
        } else {
            self.agent(&host)?
        };
        let mut b = ureq::http::Request::builder().method(req.method.clone()).uri(&url);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        // Credentials go only to the registry host itself, never to a storage redirect.
        if let (Some(a), true) = (auth, host == req.host) {
            b = b.header("Authorization", a);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let invalid =
            |e: ureq::http::Error| RegistryError::Invalid(format!("Invalid request URL `{}`: {e}", redact_url(&url)));
        let result = match &mut req.body {
            Body::Empty => {
                let needs_length = matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
                if needs_length {
                    b = b.header("Content-Length", "0");
                }
                agent.run(b.body(()).map_err(invalid)?)
            }
            Body::Bytes(bytes) => {
                b = b.header("Content-Length", bytes.len().to_string());
                agent.run(b.body(*bytes).map_err(invalid)?)
            }
            Body::Reader(r, len) => {
                b = b.header("Content-Length", len.to_string());
                agent.run(b.body(ureq::SendBody::from_reader(*r)).map_err(invalid)?)
            }
        };
        result.map_err(|e| transport_error(&host, e))
    }

    /// The `Authorization` value for `req` from what the host asked before: Basic
    /// credentials, or a bearer token for the request's scopes (cached, or fetched when
    /// missing, expired, or `refresh`).
    fn authorization(&self, req: &Req<'_>, refresh: bool) -> Result<Option<String>, RegistryError> {
        let Some(challenge) = self.challenges.lock().unwrap().get(req.host).cloned() else { return Ok(None) };
        let cred = match req.credential {
            Some(c) => Some(c.clone()),
            None => self.credential(req.host)?,
        };
        if challenge.scheme == "basic" {
            return Ok(match &cred {
                Some(Credential::RegistryToken(t)) => Some(format!("Bearer {t}")),
                Some(c) => c.basic_header(),
                None => None,
            });
        }
        if let Some(Credential::RegistryToken(t)) = &cred {
            return Ok(Some(format!("Bearer {t}")));
        }
        let key = (req.host.to_string(), req.scopes.join(" "));
        if !refresh && req.credential.is_none() {
            if let Some(t) = self.tokens.lock().unwrap().get(&key) {
                if t.expires > Instant::now() {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
            }
        }
        let token = self.fetch_token(req.host, &challenge, &req.scopes, cred.as_ref())?;
        let value = format!("Bearer {}", token.value);
        if req.credential.is_none() {
            self.tokens.lock().unwrap().insert(key, token);
        }
        Ok(Some(value))
    }

    /// Asks the challenge's realm for a token: `GET realm?service=…&scope=…` (Basic
    /// credentials when known), or the OAuth2 refresh-token `POST` for identity tokens.
    fn fetch_token(
        &self,
        host: &str,
        challenge: &Challenge,
        scopes: &[String],
        cred: Option<&Credential>,
    ) -> Result<Token, RegistryError> {
        let realm = challenge.params.get("realm").filter(|r| !r.is_empty()).ok_or_else(|| {
            RegistryError::Invalid(format!("Registry `{host}` asked for a bearer token without naming a `realm`"))
        })?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Invalid(format!(
                "Registry `{host}` named an invalid token realm `{}`",
                redact_url(realm)
            )));
        }
        let service = challenge.params.get("service").cloned().unwrap_or_default();
        let scopes: Vec<String> = if scopes.is_empty() {
            challenge.params.get("scope").map(|s| s.split(' ').map(str::to_string).collect()).unwrap_or_default()
        } else {
            scopes.to_vec()
        };
        let mut query = Vec::new();
        if !service.is_empty() {
            query.push(format!("service={}", encode(&service)));
        }
        query.extend(scopes.iter().map(|s| format!("scope={}", encode(s))));
        let realm_host = url_host(realm).to_string();
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let (method, url, body) = match cred {
            Some(Credential::IdentityToken(t)) => {
                let mut form = vec![
                    "grant_type=refresh_token".to_string(),
                    format!("refresh_token={}", encode(t)),
                    "client_id=cairn".to_string(),
                ];
                form.extend(query);
                headers.push(("Content-Type", "application/x-www-form-urlencoded".into()));
                (Method::POST, realm.clone(), form.join("&").into_bytes())
            }
            other => {
                if let Some(Credential::Basic { username, .. }) = other {
                    query.push(format!("account={}", encode(username)));
                }
                if let Some(h) = other.and_then(Credential::basic_header) {
                    headers.push(("Authorization", h));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let url = if query.is_empty() { realm.clone() } else { format!("{realm}{sep}{}", query.join("&")) };
                (Method::GET, url, Vec::new())
            }
        };
        let agent = if url.starts_with("http://") {
            if !self.config.is_insecure(&realm_host) && !self.config.is_insecure(host) {
                return Err(RegistryError::Invalid(format!(
                    "Registry `{host}` named a plain-HTTP token realm `{}`; allowed only for insecure registries",
                    redact_url(realm)
                )));
            }
            self.plain.clone()
        } else {
            self.agent(&realm_host)?
        };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in &headers {
            b = b.header(*k, v);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.token_fetches.fetch_add(1, Ordering::Relaxed);
        let req = b
            .body(body)
            .map_err(|e| RegistryError::Invalid(format!("Invalid token realm `{}`: {e}", redact_url(realm))))?;
        let resp = agent.run(req).map_err(|e| transport_error(&realm_host, e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RegistryError::Unauthorized { registry: host.to_string() });
        }
        let body = read_small(resp, 1 << 20)?;
        if status != 200 {
            return Err(RegistryError::Http { status, url: redact_url(realm), message: error_message(&body) });
        }
        parse_token_answer(&body, Instant::now()).ok_or_else(|| {
            RegistryError::Invalid(format!("The token endpoint `{}` answered without a token", redact_url(realm)))
        })
    }
}

/// The certificates of a PEM bundle (other sections are skipped).
fn pem_certs(bytes: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(bytes)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A ureq failure as a registry error: TLS problems apart from other connection ones.
pub(crate) fn transport_error(host: &str, e: ureq::Error) -> RegistryError {
    let message = e.to_string();
    let tls = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_))
        || message.contains("certificate")
        || message.contains("InvalidMessage")
        || message.to_ascii_lowercase().contains("tls");
    if tls {
        RegistryError::Tls { registry: host.to_string(), message }
    } else {
        RegistryError::Connection { registry: host.to_string(), message }
    }
}

/// Reads a response body of at most `limit` bytes.
pub(crate) fn read_small(resp: Response<ureq::Body>, limit: u64) -> Result<Vec<u8>, RegistryError> {
    resp.into_body().into_with_config().limit(limit).read_to_vec().map_err(|e| RegistryError::Connection {
        registry: String::new(),
        message: format!("reading a response failed: {e}"),
    })
}

/// The error for an unexpected status: `404` → `NotFound`, `401` → `Unauthorized`,
/// `403` → `Denied`, else `Http` with the registry's message.
pub(crate) fn status_error(
    resp: Response<ureq::Body>,
    host: &str,
    url: &str,
    what: &str,
    repository: &str,
) -> RegistryError {
    let status = resp.status().as_u16();
    match status {
        404 => RegistryError::NotFound { reference: what.to_string() },
        401 => RegistryError::Unauthorized { registry: host.to_string() },
        403 => RegistryError::Denied { registry: host.to_string(), repository: repository.to_string() },
        _ => {
            let body = read_small(resp, 64 << 10).unwrap_or_default();
            RegistryError::Http { status, url: redact_url(url), message: error_message(&body) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_encoding() {
        assert_eq!(url_host("https://r.lan:5000/v2/x?y"), "r.lan:5000");
        assert_eq!(url_host("http://127.0.0.1/token"), "127.0.0.1");
        assert_eq!(encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
