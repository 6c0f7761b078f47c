//! The embedded registry's HTTP API under good and bad input, spoken to with a
//! plain HTTP client (reqwest) and raw TCP for paths clients would normalise.

use std::io::{Read, Write};

use pulltime::oci::digest::sha256_digest;
use pulltime::server::{ServeOptions, ServerThread};
use reqwest::StatusCode;

struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &ServerThread) -> Api {
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", server.addr),
        }
    }
    fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        self.rt.block_on(async {
            let r = req.send().await.unwrap();
            let (s, h) = (r.status(), r.headers().clone());
            (s, h, r.bytes().await.unwrap().to_vec())
        })
    }
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }
    fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        self.send(self.http.get(self.url(path)))
    }
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not an error envelope: {}", String::from_utf8_lossy(body)));
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

fn open_server(storage: &std::path::Path) -> ServerThread {
    ServerThread::spawn(ServeOptions {
        storage: Some(storage.to_path_buf()),
        ..ServeOptions::default()
    })
    .unwrap()
}

/// Uploads a blob monolithically (POST then PUT) and returns its digest.
fn upload(api: &Api, repo: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let (s, h, _) = api.send(
        api.http
            .post(api.url(&format!("/v2/{repo}/blobs/uploads/"))),
    );
    assert_eq!(s, StatusCode::ACCEPTED);
    let loc = h["location"].to_str().unwrap().to_string();
    let (s, _, body) = api.send(
        api.http
            .put(api.url(&format!("{loc}?digest={digest}")))
            .body(data.to_vec()),
    );
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    digest
}

#[test]
fn unknown_names_tags_and_digests_are_404_with_spec_codes() {
    let storage = tempfile::tempdir().unwrap();
    let server = open_server(storage.path());
    let api = Api::new(&server);
    let (s, h, _) = api.get("/v2/");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["docker-distribution-api-version"], "registry/2.0");
    let (s, _, b) = api.get("/v2/nope/manifests/latest");
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
    upload(&api, "app", b"config");
    let (s, _, b) = api.get("/v2/app/manifests/missing");
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let (s, _, b) = api.get(&format!("/v2/app/blobs/sha256:{}", "0".repeat(64)));
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let (s, _, b) = api.get("/v2/nope/tags/list");
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
}

#[test]
fn blob_with_wrong_digest_is_rejected_and_nothing_is_stored() {
    let storage = tempfile::tempdir().unwrap();
    let server = open_server(storage.path());
    let api = Api::new(&server);
    let claimed = sha256_digest(b"what I claim");
    let (s, _, b) = api.send(
        api.http
            .post(api.url(&format!("/v2/app/blobs/uploads/?digest={claimed}")))
            .body(b"what I send".to_vec()),
    );
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let (s, _, _) = api.send(api.http.head(api.url(&format!("/v2/app/blobs/{claimed}"))));
    assert_eq!(s, StatusCode::NOT_FOUND);
    let actual = sha256_digest(b"what I send");
    let (s, _, _) = api.send(api.http.head(api.url(&format!("/v2/app/blobs/{actual}"))));
    assert_eq!(s, StatusCode::NOT_FOUND);
    let stored: Vec<_> = std::fs::read_dir(storage.path().join("blobs/sha256"))
        .unwrap()
        .collect();
    let leftovers: Vec<_> = std::fs::read_dir(storage.path().join("uploads"))
        .unwrap()
        .collect();
    assert!(
        stored.is_empty() && leftovers.is_empty(),
        "{stored:?} {leftovers:?}"
    );
}

#[test]
fn chunked_uploads_check_order_and_ranges_are_served() {
    let storage = tempfile::tempdir().unwrap();
    let server = open_server(storage.path());
    let api = Api::new(&server);
    let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
    let (s, h, _) = api.send(api.http.post(api.url("/v2/chunks/blobs/uploads/")));
    assert_eq!(s, StatusCode::ACCEPTED);
    let loc = h["location"].to_str().unwrap().to_string();
    let patch = |range: &str, body: &[u8]| {
        api.send(
            api.http
                .patch(api.url(&loc))
                .header("content-range", range)
                .body(body.to_vec()),
        )
    };
    let (s, h, _) = patch("0-99", &data[..100]);
    assert_eq!(
        (s, h["range"].to_str().unwrap()),
        (StatusCode::ACCEPTED, "0-99")
    );
    let (s, _, b) = patch("150-199", &data[150..200]);
    assert_eq!(
        s,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let (s, _, _) = patch("100-199", &data[100..200]);
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, h, _) = api.get(&loc);
    assert_eq!(
        (s, h["range"].to_str().unwrap()),
        (StatusCode::NO_CONTENT, "0-199")
    );
    let digest = sha256_digest(&data);
    let (s, _, _) = api.send(
        api.http
            .put(api.url(&format!("{loc}?digest={digest}")))
            .body(data[200..].to_vec()),
    );
    assert_eq!(s, StatusCode::CREATED);
    let (s, h, body) = api.send(
        api.http
            .get(api.url(&format!("/v2/chunks/blobs/{digest}")))
            .header("range", "bytes=10-19"),
    );
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[10..20]);
    assert_eq!(h["content-range"], "bytes 10-19/250");
    let (s, h, _) = api.send(
        api.http
            .head(api.url(&format!("/v2/chunks/blobs/{digest}"))),
    );
    assert_eq!(
        (s, h["content-length"].to_str().unwrap()),
        (StatusCode::OK, "250")
    );
    assert_eq!(h["docker-content-digest"].to_str().unwrap(), digest);
    let (s, _, _) = api.send(
        api.http
            .get(api.url(&format!("/v2/chunks/blobs/{digest}")))
            .header("range", "bytes=300-"),
    );
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    // Cross-repository mount.
    let (s, _, _) = api.send(api.http.post(api.url(&format!(
        "/v2/other/blobs/uploads/?mount={digest}&from=chunks"
    ))));
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = api.send(api.http.head(api.url(&format!("/v2/other/blobs/{digest}"))));
    assert_eq!(s, StatusCode::OK);
}

#[test]
fn manifests_are_validated_and_tags_listed_and_survive_a_restart() {
    let storage = tempfile::tempdir().unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = {
        let server = open_server(storage.path());
        let api = Api::new(&server);
        let cfg = upload(&api, "m", config);
        let put = |reference: &str, ct: &str, body: Vec<u8>| {
            api.send(
                api.http
                    .put(api.url(&format!("/v2/m/manifests/{reference}")))
                    .header("content-type", ct)
                    .body(body),
            )
        };
        let oci = pulltime::oci::media_type::OCI_MANIFEST;
        let (s, _, b) = put("v1", oci, b"{not json".to_vec());
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
        );
        let missing = serde_json::json!({"schemaVersion": 2, "mediaType": oci,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(b"absent"), "size": 6}]});
        let (s, _, b) = put("v1", oci, serde_json::to_vec(&missing).unwrap());
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
        );
        let good = serde_json::json!({"schemaVersion": 2, "mediaType": oci,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": config.len()},
            "layers": []});
        let body = serde_json::to_vec(&good).unwrap();
        let (s, _, b) = put(&sha256_digest(b"other"), oci, body.clone());
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        );
        for tag in ["v1", "v2", "latest"] {
            let (s, h, _) = put(tag, oci, body.clone());
            assert_eq!(s, StatusCode::CREATED);
            assert_eq!(
                h["docker-content-digest"].to_str().unwrap(),
                sha256_digest(&body)
            );
        }
        let (s, _, b) = api.get("/v2/m/tags/list?n=2");
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()["tags"],
            serde_json::json!(["latest", "v1"])
        );
        body
    };
    // A new server on the same storage serves what was pushed.
    let server = open_server(storage.path());
    let api = Api::new(&server);
    let (s, h, b) = api.get("/v2/m/manifests/v2");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, manifest);
    assert_eq!(h["content-type"], pulltime::oci::media_type::OCI_MANIFEST);
}

fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn path_like_repository_names_are_rejected() {
    let storage = tempfile::tempdir().unwrap();
    let server = open_server(storage.path());
    for path in [
        "/v2/../x/manifests/latest",
        "/v2/a/../../etc/manifests/t",
        "/v2/%2e%2e/x/blobs/sha256:00",
        "/v2/UPPER/tags/list",
        "/v2//x/manifests/t",
    ] {
        let resp = raw_get(server.addr, path);
        assert!(resp.starts_with("HTTP/1.1 400"), "{path}: {resp}");
        assert!(resp.contains("NAME_INVALID"), "{path}: {resp}");
    }
}

#[test]
fn dockerhub_emulation_challenges_tokens_redirects_and_rate_limits() {
    let storage = tempfile::tempdir().unwrap();
    let server = ServerThread::spawn(ServeOptions {
        storage: Some(storage.path().to_path_buf()),
        emulate_dockerhub: true,
        rate_limit: 2,
        ..ServeOptions::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let (s, h, _) = api.get("/v2/library/app/manifests/latest");
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let challenge = h["www-authenticate"].to_str().unwrap().to_string();
    let parsed = pulltime::registry::auth::parse_challenge(&challenge).unwrap();
    let pulltime::registry::auth::Challenge::Bearer {
        realm,
        service,
        scope,
    } = parsed
    else {
        panic!("{challenge}")
    };
    assert_eq!(scope.as_deref(), Some("repository:library/app:pull"));
    let token_url = format!(
        "{realm}?service={}&scope=repository:library/app:pull,push",
        service.unwrap()
    );
    let (s, _, b) = api.get(&token_url);
    assert_eq!(s, StatusCode::OK);
    let token = serde_json::from_slice::<serde_json::Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = |req: reqwest::RequestBuilder| req.bearer_auth(&token);
    // Push a blob and a manifest with the token.
    let data = b"layer-bytes".to_vec();
    let digest = sha256_digest(&data);
    let (s, _, _) = api.send(
        auth(
            api.http
                .post(api.url(&format!("/v2/library/app/blobs/uploads/?digest={digest}"))),
        )
        .body(data.clone()),
    );
    assert_eq!(s, StatusCode::CREATED);
    // A token for one repository does not open another.
    let (s, _, _) = api.send(auth(
        api.http
            .get(api.url(&format!("/v2/library/other/blobs/{digest}"))),
    ));
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Blob GETs go to the CDN with a signed URL; a tampered signature is refused.
    let (s, h, _) = api.send(auth(
        api.http
            .get(api.url(&format!("/v2/library/app/blobs/{digest}"))),
    ));
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT);
    let location = h["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("http://{}/", server.cdn_addr.unwrap())));
    let (s, _, b) = api.get(&location);
    assert_eq!((s, b), (StatusCode::OK, data));
    let (s, _, _) = api.get(&location.replace("sig=", "sig=00"));
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Manifest GETs count against the rate limit.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cfg = sha256_digest(&config);
    api.send(
        auth(
            api.http
                .post(api.url(&format!("/v2/library/app/blobs/uploads/?digest={cfg}"))),
        )
        .body(config.clone()),
    );
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": pulltime::oci::media_type::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": config.len()}, "layers": []});
    let (s, _, _) = api.send(
        auth(api.http.put(api.url("/v2/library/app/manifests/latest")))
            .header("content-type", pulltime::oci::media_type::OCI_MANIFEST)
            .body(serde_json::to_vec(&m).unwrap()),
    );
    assert_eq!(s, StatusCode::CREATED);
    let get = || {
        api.send(auth(
            api.http.get(api.url("/v2/library/app/manifests/latest")),
        ))
    };
    let (s, h, _) = get();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            h["ratelimit-limit"].to_str().unwrap(),
            h["ratelimit-remaining"].to_str().unwrap()
        ),
        ("2;w=21600", "1;w=21600")
    );
    let (_, h, _) = get();
    assert_eq!(h["ratelimit-remaining"].to_str().unwrap(), "0;w=21600");
    let (s, _, b) = get();
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS")
    );
    // HEADs do not count.
    let (s, _, _) = api.send(auth(
        api.http.head(api.url("/v2/library/app/manifests/latest")),
    ));
    assert_eq!(s, StatusCode::OK);
}

#[test]
fn a_mount_from_a_layout_repository_links_the_blob_for_the_manifest_and_pulls() {
    // skopeo mounts blobs it has seen in another repository of the registry;
    // from a repository served out of an OCI layout, the mount used to answer
    // 201 and link nothing, so the manifest PUT failed with MANIFEST_BLOB_UNKNOWN.
    let layout = tempfile::tempdir().unwrap();
    let storage = tempfile::tempdir().unwrap();
    let image = pulltime::synth::synthesize(
        &pulltime::synth::ImageProfile::load("vp-transcode-multistage").unwrap(),
        pulltime::synth::SynthOptions {
            scale: 0.003,
            compression: pulltime::oci::media_type::Compression::Gzip,
        },
        layout.path(),
        "v1",
    )
    .unwrap();
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("tricky".into(), layout.path().to_path_buf())],
        storage: Some(storage.path().to_path_buf()),
        ..ServeOptions::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let oci = pulltime::oci::media_type::OCI_MANIFEST;
    let (s, _, manifest) = api.send(
        api.http
            .get(api.url("/v2/tricky/manifests/v1"))
            .header("accept", oci),
    );
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = vec![doc["config"]["digest"].as_str().unwrap().to_string()];
    blobs.extend(
        doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    assert_eq!(blobs.len(), image.layers.len() + 1);
    for digest in &blobs {
        let (s, h, _) = api.send(api.http.post(api.url(&format!(
            "/v2/pushed-tricky/blobs/uploads/?mount={digest}&from=tricky"
        ))));
        assert_eq!(s, StatusCode::CREATED, "{digest}");
        assert!(h["location"].to_str().unwrap().ends_with(digest.as_str()));
    }
    let (s, _, body) = api.send(
        api.http
            .put(api.url("/v2/pushed-tricky/manifests/v1"))
            .header("content-type", oci)
            .body(manifest.clone()),
    );
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    for digest in &blobs {
        let (s, _, body) = api.send(
            api.http
                .get(api.url(&format!("/v2/pushed-tricky/blobs/{digest}"))),
        );
        assert_eq!(s, StatusCode::OK, "{digest}");
        assert_eq!(&sha256_digest(&body), digest);
    }
    // A mount of a blob the source does not have is an upload, not a lie.
    let absent = sha256_digest(b"not in tricky");
    let (s, _, _) = api.send(api.http.post(api.url(&format!(
        "/v2/pushed-tricky/blobs/uploads/?mount={absent}&from=tricky"
    ))));
    assert_eq!(s, StatusCode::ACCEPTED);
    // And the pushed repository pulls like the original.
    let dest = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    crate::common::pulltime(home.path())
        .args([
            "pull",
            &server.reference("pushed-tricky:v1"),
            "-q",
            "--dest",
        ])
        .arg(dest.path().join("root"))
        .assert()
        .success();
    assert!(
        dest.path()
            .join("root")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
}
