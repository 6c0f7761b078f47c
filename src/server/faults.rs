//! Fault injection (`pulltime serve --faults PROFILE`): a middleware on the
//! registry and CDN listeners that classifies each GET (token, manifest, blob,
//! cdn-blob), asks the [`FaultProfile`] whether to misbehave, and does it on the
//! wire: an error status, a stall, or a body that is cut (clean close or reset),
//! corrupted or paused. It counts what it injected for [`FaultSummary`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::api::ApiError;
use super::blobs::set_header;
use super::conn::{ConnControl, Peer};
use super::routes::{Target, parse};
use crate::profiles::faults::{
    Decision, Fault, FaultEvent, FaultProfile, FaultSummary, MAX_EVENTS, RequestInfo, RequestKind,
};

/// How long a cut body waits before it ends, so what was sent reaches the client
/// before the close (a reset discards unsent data).
const FLUSH_PAUSE: Duration = Duration::from_millis(30);

/// A profile and what it has done.
#[derive(Debug)]
pub struct Faults {
    profile: FaultProfile,
    state: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    matched: Vec<u64>,
    requests: BTreeMap<RequestKind, u64>,
    injected: BTreeMap<String, u64>,
    events: Vec<FaultEvent>,
}

impl Faults {
    /// Injection by `profile` (its `seed` decides the draws).
    pub fn new(profile: FaultProfile) -> Self {
        let state = Counters {
            matched: vec![0; profile.rules.len()],
            ..Counters::default()
        };
        Faults {
            profile,
            state: Mutex::new(state),
        }
    }

    /// Counts the request and decides its fault; returns its number among
    /// requests of its kind too.
    fn decide(&self, req: &RequestInfo<'_>) -> (u64, Option<Decision>) {
        let mut s = self.state.lock().expect("faults lock");
        let n = s.requests.entry(req.kind).or_default();
        *n += 1;
        let n = *n;
        (n, self.profile.decide(&mut s.matched, req))
    }

    fn record(&self, kind: RequestKind, request: u64, decision: &Decision, path: &str) {
        let mut s = self.state.lock().expect("faults lock");
        let label = decision.fault.label();
        *s.injected.entry(label.clone()).or_default() += 1;
        if s.events.len() < MAX_EVENTS {
            s.events.push(FaultEvent {
                kind,
                request,
                rule: decision.rule,
                fault: label,
                path: path.to_string(),
            });
        }
    }

    /// Everything injected so far.
    pub fn summary(&self) -> FaultSummary {
        let s = self.state.lock().expect("faults lock");
        FaultSummary {
            profile: self.profile.name.clone(),
            seed: self.profile.seed,
            requests: RequestKind::ALL
                .iter()
                .map(|k| {
                    (
                        k.name().to_string(),
                        s.requests.get(k).copied().unwrap_or(0),
                    )
                })
                .collect(),
            total_injected: s.injected.values().sum(),
            injected: s.injected.clone(),
            events: s.events.clone(),
        }
    }
}

/// The kind and repository of a request, if faults can apply to it.
fn classify(req: &Request, cdn: bool) -> Option<(RequestKind, Option<String>)> {
    if req.method() != Method::GET {
        return None;
    }
    let path = req.uri().path();
    if cdn {
        return path
            .starts_with("/cdn/")
            .then_some((RequestKind::CdnBlob, None));
    }
    if path == "/token" {
        let repo = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "scope")
            .and_then(|(_, v)| {
                let mut parts = v.splitn(3, ':');
                match (parts.next(), parts.next()) {
                    (Some("repository"), Some(name)) => Some(name.to_string()),
                    _ => None,
                }
            });
        return Some((RequestKind::Token, repo));
    }
    match parse(path)? {
        Target::Manifest(repo, _) => Some((RequestKind::Manifest, Some(repo.to_string()))),
        Target::Blob(repo, _) => Some((RequestKind::Blob, Some(repo.to_string()))),
        _ => None,
    }
}

/// Middleware for the registry listener.
pub async fn inject(
    State(faults): State<Arc<Faults>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    inject_on(&faults, &peer, req, next, false).await
}

/// Middleware for the CDN listener.
pub async fn inject_cdn(
    State(faults): State<Arc<Faults>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    inject_on(&faults, &peer, req, next, true).await
}

async fn inject_on(faults: &Faults, peer: &Peer, req: Request, next: Next, cdn: bool) -> Response {
    let Some((kind, repo)) = classify(&req, cdn) else {
        return next.run(req).await;
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
    let info = RequestInfo {
        kind,
        repository: repo.as_deref(),
        path_and_query: &path,
    };
    let (n, decision) = faults.decide(&info);
    let Some(decision) = decision else {
        return next.run(req).await;
    };
    let record = || faults.record(kind, n, &decision, &path);
    match &decision.fault {
        Fault::Status { code, retry_after } => {
            record();
            status_response(*code, *retry_after)
        }
        Fault::Stall {
            seconds,
            after_bytes: None,
        }
        | Fault::SlowToken { seconds } => {
            record();
            tokio::time::sleep(Duration::from_secs_f64(*seconds)).await;
            next.run(req).await
        }
        body_fault => {
            let resp = next.run(req).await;
            let len = content_length(&resp);
            let has_body =
                matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) && len > 0;
            if !has_body {
                // A redirect, an error or an empty body: nothing to cut or flip.
                return resp;
            }
            record();
            let plan = match body_fault {
                Fault::Reset { after } => Plan::Reset(after.bytes_of(len)),
                Fault::Truncate { after } => Plan::Truncate(after.bytes_of(len)),
                Fault::Corrupt => Plan::Corrupt(len / 2),
                Fault::Stall {
                    seconds,
                    after_bytes: Some(b),
                } => Plan::Stall((*b).min(len - 1), Duration::from_secs_f64(*seconds)),
                _ => unreachable!("status, stall before headers and slow-token handled above"),
            };
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, faulty_body(body, plan, peer.conn.clone()))
        }
    }
}

fn content_length(resp: &Response) -> u64 {
    resp.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An error status with a registry error body (and `Retry-After` when given).
fn status_response(code: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (error, message) = match code {
        429 => ("TOOMANYREQUESTS", "too many requests (injected fault)"),
        _ => ("UNAVAILABLE", "service unavailable (injected fault)"),
    };
    let mut resp = ApiError::new(status, error, message).into_response();
    if let Some(s) = retry_after {
        set_header(resp.headers_mut(), "retry-after", &s.to_string());
    }
    resp
}

/// What happens to a body, in body bytes.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Send this many bytes, then abort the connection with an RST.
    Reset(u64),
    /// Send this many bytes, then end (the connection closes with a FIN).
    Truncate(u64),
    /// Flip the byte at this offset.
    Corrupt(u64),
    /// Pause this long after this many bytes.
    Stall(u64, Duration),
}

struct BodyState<S> {
    inner: S,
    offset: u64,
    plan: Plan,
    conn: Arc<ConnControl>,
    /// Bytes held back until a stall is over.
    held: Option<Bytes>,
    finished: bool,
}

fn faulty_body(body: Body, plan: Plan, conn: Arc<ConnControl>) -> Body {
    let state = BodyState {
        inner: body.into_data_stream(),
        offset: 0,
        plan,
        conn,
        held: None,
        finished: false,
    };
    Body::from_stream(futures_util::stream::unfold(state, next_chunk))
}

/// The next piece of a faulty body.
async fn next_chunk<S>(mut s: BodyState<S>) -> Option<(Result<Bytes, std::io::Error>, BodyState<S>)>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    if s.finished {
        return None;
    }
    if let (Some(held), Plan::Stall(_, pause)) = (s.held.take(), s.plan) {
        tokio::time::sleep(pause).await;
        s.offset += held.len() as u64;
        return Some((Ok(held), s));
    }
    if let Plan::Reset(cut) | Plan::Truncate(cut) = s.plan
        && s.offset >= cut
    {
        tokio::time::sleep(FLUSH_PAUSE).await;
        s.finished = true;
        if let Plan::Reset(_) = s.plan {
            s.conn.reset_on_close();
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset");
            return Some((Err(e), s));
        }
        return None;
    }
    let chunk = match s.inner.next().await? {
        Ok(c) => c,
        Err(e) => return Some((Err(std::io::Error::other(e)), s)),
    };
    let (start, end) = (s.offset, s.offset + chunk.len() as u64);
    let chunk = match s.plan {
        Plan::Reset(cut) | Plan::Truncate(cut) if end > cut => {
            chunk.slice(..(cut - start) as usize)
        }
        Plan::Corrupt(at) if (start..end).contains(&at) => {
            let mut b = BytesMut::from(&chunk[..]);
            b[(at - start) as usize] ^= 0xff;
            b.freeze()
        }
        Plan::Stall(at, _) if s.held.is_none() && (start..end).contains(&at) && at > start => {
            let mut head = chunk;
            s.held = Some(head.split_off((at - start) as usize));
            head
        }
        Plan::Stall(at, _) if at == start => {
            s.held = Some(chunk);
            Bytes::new()
        }
        _ => chunk,
    };
    s.offset += chunk.len() as u64;
    Some((Ok(chunk), s))
}
