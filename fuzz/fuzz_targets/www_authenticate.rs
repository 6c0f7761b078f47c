//! `parse_challenge` on arbitrary header values never panics; and a `Bearer`
//! challenge built from arbitrary realm/service/scope values that a header can
//! carry (visible ASCII, space and tab: what `HeaderValue::to_str` hands the client),
//! quoted and escaped as RFC 7235 says, parameters in any order, scheme in any
//! case, parses back to exactly those values.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pulltime::registry::auth::{Challenge, parse_challenge};

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(String),
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        /// Bit i upper-cases letter i of `Bearer`.
        scheme_case: u8,
        /// Rotates the parameter order.
        rotate: u8,
        /// Adds spaces around `,` and `=`.
        spaced: bool,
    },
}

/// What `HeaderValue::to_str` lets through: visible ASCII, space, tab.
fn header_safe(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(s) => {
            if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(&s) {
                let _ = realm;
            }
        }
        Input::Bearer {
            realm,
            service,
            scope,
            scheme_case,
            rotate,
            spaced,
        } => {
            let values = std::iter::once(&realm).chain(&service).chain(&scope);
            if !values.into_iter().all(|v| header_safe(v)) {
                return;
            }
            let scheme: String = "bearer"
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if scheme_case & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let mut params = vec![("realm", realm.clone())];
            if let Some(s) = &service {
                params.push(("service", s.clone()));
            }
            if let Some(s) = &scope {
                params.push(("scope", s.clone()));
            }
            let n = params.len();
            params.rotate_left(rotate as usize % n);
            let (eq, comma) = if spaced { (" = ", " , ") } else { ("=", ",") };
            let joined = params
                .iter()
                .map(|(k, v)| format!("{k}{eq}{}", quote(v)))
                .collect::<Vec<_>>()
                .join(comma);
            let header = format!("{scheme} {joined}");
            let parsed = parse_challenge(&header);
            assert_eq!(
                parsed,
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope
                }),
                "header {header:?}"
            );
        }
    }
});
