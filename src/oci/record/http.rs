//! The HTTP side of a run record: each request, each connection, and Docker
//! Hub's rate-limit headers.

use serde::{Deserialize, Serialize};

/// One HTTP request. Queries are never recorded (CDN URLs carry signatures).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// What the request was for: a [`RequestKind`]'s name (`ping`, `token`,
    /// `manifest`, `index`, `config`, `blob`, `blob-resume`, `redirect`, `push-*`).
    pub kind: String,
    /// HTTP method.
    pub method: String,
    /// Host and port.
    pub host: String,
    /// Path without query.
    pub path: String,
    /// HTTP status, 0 when no response came.
    pub status: u16,
    /// Start, offset from the run start.
    pub start_s: f64,
    /// Start to response headers.
    pub ttfb_s: f64,
    /// Headers to last body byte (0 when the body was not read by this request).
    pub body_s: f64,
    /// Body bytes read.
    pub bytes: u64,
    /// The `id` of the connection this request opened; null when it went over
    /// one already open.
    #[serde(default)]
    pub connection: Option<usize>,
}

/// What a request is for, as measured pulls and simulations name it in
/// [`RequestRecord::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET /v2/`: does the registry speak the API, and how does it authenticate?
    Ping,
    /// A bearer token from the registry's token service.
    Token,
    /// The manifest the reference names (or the platform's, after an index).
    Manifest,
    /// The index the tag names.
    Index,
    /// The config blob.
    Config,
    /// A layer blob.
    Blob,
    /// The rest of a layer blob whose body was cut off (`Range`, or from the start).
    BlobResume,
    /// A blob GET after the registry's redirect, to the blob source (a CDN).
    Redirect,
    /// `HEAD` of a blob before pushing it.
    PushHead,
    /// Opening an upload session.
    PushStart,
    /// Uploading a blob.
    PushBlob,
    /// Putting a manifest.
    PushManifest,
}

impl RequestKind {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Ping => "ping",
            RequestKind::Token => "token",
            RequestKind::Manifest => "manifest",
            RequestKind::Index => "index",
            RequestKind::Config => "config",
            RequestKind::Blob => "blob",
            RequestKind::BlobResume => "blob-resume",
            RequestKind::Redirect => "redirect",
            RequestKind::PushHead => "push-head",
            RequestKind::PushStart => "push-start",
            RequestKind::PushBlob => "push-blob",
            RequestKind::PushManifest => "push-manifest",
        }
    }
}

impl PartialEq<RequestKind> for String {
    fn eq(&self, kind: &RequestKind) -> bool {
        self == kind.as_str()
    }
}

/// A new connection and how long it took to set up (TCP, plus TLS for https).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Its number in the run, in the order connections were started; a request's
    /// `connection` names the one it opened.
    #[serde(default)]
    pub id: usize,
    /// `scheme://host:port`.
    pub target: String,
    /// `host:port` of the target (the registry, its CDN, its token service).
    #[serde(default)]
    pub host: String,
    /// Start, offset from the run start.
    pub start_s: f64,
    /// Time to establish: DNS, TCP (with any proxy tunnel) and TLS together.
    pub connect_s: f64,
    /// The DNS lookup; null when the host is an IP address (or not measured).
    #[serde(default)]
    pub dns_s: Option<f64>,
    /// TCP connect, and the proxy's CONNECT exchange when proxied.
    #[serde(default)]
    pub tcp_s: f64,
    /// The TLS handshake; null over plain HTTP.
    #[serde(default)]
    pub tls_s: Option<f64>,
    /// The protocol negotiated: `http/1.1` or `h2`.
    #[serde(default)]
    pub protocol: String,
    /// The address connected to (the proxy's, when proxied).
    #[serde(default)]
    pub peer: Option<String>,
    /// The proxy the connection went through (`scheme://host:port`, no
    /// credentials), or null when direct.
    #[serde(default)]
    pub proxy: Option<String>,
}

/// Docker Hub's `ratelimit-limit` / `ratelimit-remaining` header values, verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RateLimit {
    /// e.g. `100;w=21600`.
    pub limit: String,
    /// e.g. `76;w=21600`.
    pub remaining: String,
}
