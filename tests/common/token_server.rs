//! A docker token service for the real registry's `auth: token:` mode, written
//! for the tests: it checks Basic credentials (GET) or an OAuth2 refresh token
//! (POST `grant_type=refresh_token`), grants scopes per repository from a table,
//! and signs RS256 JWTs with a key and self-signed certificate made by the
//! `openssl` CLI (the registry trusts the certificate as `rootcertbundle` and
//! finds it in each token's `x5c` header). It logs every request so tests can
//! count them, and stops on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The `service` the registry names in its challenges and tokens are for.
pub const SERVICE: &str = "pttest-registry";
/// The issuer the registry trusts.
pub const ISSUER: &str = "pttest-issuer";
/// distribution's clock-skew allowance (`token.Leeway`): it accepts a token up to
/// this long after its `exp`.
const REGISTRY_LEEWAY_S: i64 = 60;

/// Who may do what, and for how long tokens last.
pub struct Policy {
    /// Basic credentials the GET accepts: (user, password).
    pub users: Vec<(&'static str, &'static str)>,
    /// Refresh tokens the POST accepts: (token, user).
    pub refresh_tokens: Vec<(&'static str, &'static str)>,
    /// (user, repository, actions) granted; anything else is granted nothing.
    pub grants: Vec<(&'static str, &'static str, &'static [&'static str])>,
    /// How long a token works at the registry (and its `expires_in`).
    pub lifetime_s: i64,
}

/// One request the token service answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// GET or POST.
    pub method: String,
    /// The user the credentials proved, if any.
    pub user: Option<String>,
    /// `grant_type` of a POST.
    pub grant_type: Option<String>,
    /// `client_id` of a POST.
    pub client_id: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The status answered.
    pub status: u16,
}

struct State {
    policy: Policy,
    key: PathBuf,
    x5c: String,
    log: Mutex<Vec<TokenRequest>>,
    issued: AtomicU64,
}

/// A running token service.
pub struct TokenServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The certificate the registry must trust (`rootcertbundle`).
    pub cert: PathBuf,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Makes a key and certificate and starts serving on a free loopback port.
    pub fn start(policy: Policy) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        super::run(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .arg("-subj")
                .arg(format!("/CN={ISSUER}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success(), "openssl x509 failed");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            policy,
            key,
            x5c: STANDARD.encode(der.stdout),
            log: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let state = state.clone();
                            std::thread::spawn(move || handle(s, &state));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TokenServer {
            addr,
            cert,
            state,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// The registry's `auth: token:` block (top-level YAML for `Setup::top_extra`).
    pub fn registry_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.addr,
            self.cert.display()
        )
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut s: TcpStream, state: &State) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some((head, body)) = read_request(&mut s) else {
        return;
    };
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("");
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params: Vec<(String, String)> = if method == "POST" {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    };
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(n, _)| n == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let p = &state.policy;
    // Ok(None): anonymous; Err(()): credentials refused.
    let who: Result<Option<String>, ()> = if method == "POST" {
        match (param("grant_type").as_deref(), param("refresh_token")) {
            (Some("refresh_token"), Some(rt)) => p
                .refresh_tokens
                .iter()
                .find(|(t, _)| *t == rt)
                .map(|(_, u)| Some(u.to_string()))
                .ok_or(()),
            _ => Err(()),
        }
    } else {
        match header("authorization") {
            None => Ok(None),
            Some(a) => a
                .strip_prefix("Basic ")
                .and_then(|b| STANDARD.decode(b).ok())
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|d| {
                    let (u, pw) = d.split_once(':')?;
                    p.users
                        .iter()
                        .any(|(uu, pp)| *uu == u && *pp == pw)
                        .then(|| Some(u.to_string()))
                })
                .ok_or(()),
        }
    };
    let (status, body) = match &who {
        Err(()) => (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials or refresh token"}]}"#
                .to_string(),
        ),
        Ok(user) => {
            let token = issue(state, user.as_deref(), &scopes);
            let issued = humantime::format_rfc3339_seconds(SystemTime::now());
            (
                200,
                format!(
                    r#"{{"token":"{token}","access_token":"{token}","expires_in":{},"issued_at":"{issued}"}}"#,
                    p.lifetime_s
                ),
            )
        }
    };
    state.log.lock().unwrap().push(TokenRequest {
        method,
        user: who.ok().flatten(),
        grant_type: param("grant_type"),
        client_id: param("client_id"),
        scopes,
        status,
    });
    let reason = if status == 200 { "OK" } else { "Unauthorized" };
    let _ = write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Head and body of one request, both bounded.
fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 << 10 {
            return None;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(64 << 10);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// A signed token granting `user` what the policy allows of `scopes`.
fn issue(state: &State, user: Option<&str>, scopes: &[String]) -> String {
    let p = &state.policy;
    let mut access = Vec::new();
    for scope in scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let allowed: Vec<&str> = actions
            .split(',')
            .filter(|a| {
                p.grants
                    .iter()
                    .any(|(u, r, acts)| Some(*u) == user && *r == name && acts.contains(a))
            })
            .collect();
        if !allowed.is_empty() {
            access
                .push(serde_json::json!({"type": "repository", "name": name, "actions": allowed}));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let n = state.issued.fetch_add(1, Ordering::Relaxed);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [state.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.unwrap_or(""),
        "aud": SERVICE,
        // The registry accepts a token until exp + its leeway: so that it stops
        // working `lifetime_s` from now, exp is set that much earlier.
        "exp": now + p.lifetime_s - REGISTRY_LEEWAY_S,
        "nbf": now,
        "iat": now,
        "jti": format!("pttest-{n}"),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&state.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}
