//! Parsing, validation, schedules and the seeded draws of fault profiles.

use super::*;

fn blob(path: &str) -> RequestInfo<'_> {
    RequestInfo {
        kind: RequestKind::Blob,
        repository: Some("app"),
        path_and_query: path,
    }
}

fn sequence(p: &FaultProfile, n: usize) -> Vec<Option<usize>> {
    let mut counters = vec![0; p.rules.len()];
    (0..n)
        .map(|_| {
            p.decide(&mut counters, &blob("/v2/app/blobs/x"))
                .map(|d| d.rule)
        })
        .collect()
}

#[test]
fn every_builtin_parses_and_matches_its_file() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/faults"));
    for (name, text) in BUILTIN {
        let p = FaultProfile::parse(name, text).unwrap();
        assert_eq!(&p.name, name);
        assert!(!p.description.is_empty(), "{name} must say what it does");
        assert!(!p.rules.is_empty(), "{name} has no rules");
        let on_disk = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(&on_disk, text);
    }
}

#[test]
fn schedules_fire_on_the_requests_they_name() {
    let p = FaultProfile::parse(
        "t",
        "name = \"t\"\n[[rule]]\nkind = \"blob\"\nfault = \"corrupt\"\nnth = [2, 5]\nevery = 4\nfirst = 1\n",
    )
    .unwrap();
    let fired: Vec<usize> = sequence(&p, 9)
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_some())
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(fired, vec![1, 2, 4, 5, 8]);
}

#[test]
fn draws_depend_on_the_seed_only_and_approach_the_probability() {
    let text = "name = \"t\"\nseed = 7\n[[rule]]\nkind = \"any\"\nfault = \"corrupt\"\nprobability = 0.25\n";
    let a = FaultProfile::parse("t", text).unwrap();
    let b = FaultProfile::parse("t", text).unwrap();
    let mut c = a.clone();
    c.seed = 8;
    let (sa, sb, sc) = (sequence(&a, 4000), sequence(&b, 4000), sequence(&c, 4000));
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
    let hits = sa.iter().filter(|d| d.is_some()).count();
    assert!((900..1100).contains(&hits), "{hits} of 4000 at p = 0.25");
}

#[test]
fn rules_apply_only_to_their_kind_repository_and_path() {
    let p = FaultProfile::parse(
        "t",
        "name = \"t\"\n[[rule]]\nkind = \"manifest\"\nrepository = \"app\"\nfault = \"status\"\nstatus = 503\nevery = 1\n[[rule]]\nkind = \"blob\"\npath_contains = \"sha256:ab\"\nfault = \"corrupt\"\nevery = 1\n",
    )
    .unwrap();
    let mut counters = vec![0; 2];
    let mut decide = |kind, repository, path| {
        p.decide(
            &mut counters,
            &RequestInfo {
                kind,
                repository,
                path_and_query: path,
            },
        )
        .map(|d| d.fault.label())
    };
    use RequestKind::*;
    assert_eq!(
        decide(Manifest, Some("app"), "/v2/app/manifests/v1").as_deref(),
        Some("status-503")
    );
    assert_eq!(
        decide(Manifest, Some("other"), "/v2/other/manifests/v1"),
        None
    );
    assert_eq!(decide(Blob, Some("app"), "/v2/app/blobs/sha256:cd"), None);
    assert_eq!(
        decide(Blob, Some("app"), "/v2/app/blobs/sha256:ab").as_deref(),
        Some("corrupt")
    );
    assert_eq!(decide(CdnBlob, None, "/cdn/sha256:ab"), None);
    assert_eq!(decide(Token, None, "/token"), None);
}

/// The fractions docs/faults.md gives for the built-in profiles.
#[test]
fn builtin_fractions_match_the_documentation() {
    let fraction = |name: &str, kind: RequestKind, failing_only: bool| {
        let p = FaultProfile::load(name).unwrap();
        let mut counters = vec![0; p.rules.len()];
        let n = 20_000;
        let hits = (0..n)
            .filter_map(|_| {
                let req = RequestInfo {
                    kind,
                    repository: Some("app"),
                    path_and_query: "/v2/app/x",
                };
                p.decide(&mut counters, &req)
            })
            .filter(|d| {
                !failing_only || !matches!(d.fault, Fault::Stall { .. } | Fault::SlowToken { .. })
            })
            .count();
        hits as f64 / n as f64
    };
    use RequestKind::*;
    let near = |got: f64, want: f64| assert!((got - want).abs() < 0.01, "{got} vs {want}");
    for kind in [Blob, CdnBlob] {
        near(fraction("mixed", kind, false), 0.185);
        near(fraction("mixed", kind, true), 0.160);
        assert_eq!(fraction("hopeless", kind, true), 1.0);
        assert_eq!(fraction("reset", kind, true), 6666.0 / 20_000.0);
        assert_eq!(fraction("corrupt", kind, true), 6666.0 / 20_000.0);
    }
    near(fraction("mixed", Manifest, false), 0.143);
    near(fraction("mixed", Manifest, true), 0.0975);
    near(fraction("mixed", Token, false), 0.145);
    near(fraction("mixed", Token, true), 0.045);
    assert_eq!(fraction("hopeless", Manifest, false), 0.0);
    assert_eq!(fraction("ratelimit", Manifest, true), 0.25);
    assert_eq!(fraction("slow-token", Token, false), 0.5);
}

#[test]
fn cuts_always_cut() {
    assert_eq!(Cut::Bytes(10).bytes_of(100), 10);
    assert_eq!(Cut::Bytes(500).bytes_of(100), 99);
    assert_eq!(Cut::Fraction(0.5).bytes_of(100), 50);
    assert_eq!(Cut::Fraction(0.0).bytes_of(1), 0);
}

#[test]
fn bad_profiles_say_what_is_wrong() {
    let err = |text: &str| FaultProfile::parse("x", text).unwrap_err().to_string();
    let rule = |body: &str| format!("name = \"x\"\n[[rule]]\n{body}\n");
    let e = FaultProfile::load("meltdown").unwrap_err().to_string();
    assert!(e.contains("mixed") && e.contains("hopeless"), "{e}");
    let e = err(&rule("kind = \"blob\"\nfault = \"explode\"\nevery = 1"));
    assert!(e.contains("explode") && e.contains("truncate"), "{e}");
    let e = err(&rule(
        "kind = \"blob\"\nfault = \"corrupt\"\nprobability = 1.5",
    ));
    assert!(e.contains("probability"), "{e}");
    let e = err(&rule("kind = \"blob\"\nfault = \"corrupt\""));
    assert!(e.contains("probability") && e.contains("every"), "{e}");
    let e = err(&rule(
        "kind = \"blob\"\nfault = \"status\"\nstatus = 429\nevery = 1",
    ));
    assert!(e.contains("retry_after"), "{e}");
    let e = err(&rule(
        "kind = \"blob\"\nfault = \"status\"\nstatus = 404\nevery = 1",
    ));
    assert!(e.contains("404"), "{e}");
    let e = err(&rule(
        "kind = \"blob\"\nfault = \"slow-token\"\nseconds = 1\nevery = 1",
    ));
    assert!(e.contains("token"), "{e}");
    let e = err(&rule(
        "kind = \"blob\"\nfault = \"corrupt\"\nseconds = 1\nevery = 1",
    ));
    assert!(e.contains("seconds"), "{e}");
    let e = err(&rule("kind = \"blob\"\nfault = \"truncate\"\nevery = 1"));
    assert!(e.contains("after_bytes") && e.contains("fraction"), "{e}");
    let e = err(&rule(
        "kind = \"cdn-blob\"\nrepository = \"a\"\nfault = \"corrupt\"\nevery = 1",
    ));
    assert!(e.contains("repository"), "{e}");
    let e = err("name = \"x\"\nbogus = 1");
    assert!(e.contains("bogus"), "{e}");
}
