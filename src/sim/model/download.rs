//! The downloads: layers requested in order, up to a number in flight, their
//! bodies sharing the bandwidth fairly (each capped per connection, all together
//! by the link). Between events every rate is constant, so the loop steps from
//! event to event: a body starting or a transfer finishing.

use super::SimLayerRun;
use super::network::{Client, RequestKind, blob_bandwidth};
use crate::sim::{SimError, SimImage, SimLoop};

/// Where one layer's download stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not requested yet.
    Queued,
    /// Requested; its body arrives from `body_from` on.
    InFlight {
        /// When the body's first byte arrives.
        body_from: f64,
    },
    /// Its last byte has arrived (or it was cached: never requested).
    Done,
}

/// One layer during the downloads.
struct LayerState {
    /// Its times so far.
    run: SimLayerRun,
    /// Bytes still to arrive.
    remaining: f64,
    phase: Phase,
}

/// Downloads every layer from `start`: up to `max_downloads` in flight, sharing
/// the bandwidth fairly. Returns the layers' download times.
pub(super) fn run(
    image: &SimImage,
    client: &mut Client<'_>,
    start: f64,
    max_downloads: usize,
) -> Result<Vec<SimLayerRun>, SimError> {
    // Each step starts a request, ends a transfer or lets a body begin: bounded.
    let budget = 8 * image.layers.len() + 16;
    run_within(image, client, start, max_downloads, budget)
}

/// [`run`] in at most `budget` steps.
pub(super) fn run_within(
    image: &SimImage,
    client: &mut Client<'_>,
    start: f64,
    max_downloads: usize,
    budget: usize,
) -> Result<Vec<SimLayerRun>, SimError> {
    let n = image.layers.len();
    let mut now = start;
    let mut layers: Vec<LayerState> = image
        .layers
        .iter()
        .map(|l| LayerState {
            run: if l.cached {
                SimLayerRun {
                    cached: true,
                    start_s: now,
                    download_end_s: now,
                    ..SimLayerRun::default()
                }
            } else {
                SimLayerRun::default()
            },
            remaining: l.compressed as f64,
            phase: if l.cached { Phase::Done } else { Phase::Queued },
        })
        .collect();
    let mut next = 0usize;
    let bandwidth = blob_bandwidth(client.flow, client.host);
    for _ in 0..budget {
        // Start requests while there is room.
        let in_flight = layers
            .iter()
            .filter(|l| matches!(l.phase, Phase::InFlight { .. }))
            .count();
        let mut room = max_downloads.max(1).saturating_sub(in_flight);
        while room > 0 && next < n {
            if layers[next].phase != Phase::Queued {
                next += 1;
                continue;
            }
            let response = client.blob_request(now, RequestKind::Blob);
            let l = &mut layers[next];
            l.run.start_s = now;
            l.run.ttfb_s = response.ttfb_s;
            l.run.redirect_s = response.redirect_s;
            l.phase = Phase::InFlight {
                body_from: now + response.ttfb_s,
            };
            next += 1;
            room -= 1;
        }
        let body_from = |l: &LayerState| match l.phase {
            Phase::InFlight { body_from } => Some(body_from),
            Phase::Queued | Phase::Done => None,
        };
        let active: Vec<usize> = (0..n)
            .filter(|&i| body_from(&layers[i]).is_some_and(|b| b <= now + 1e-12))
            .collect();
        let waiting: Vec<f64> = layers
            .iter()
            .filter_map(body_from)
            .filter(|&b| b > now + 1e-12)
            .collect();
        // Nothing in flight: there was room, so every layer has been requested.
        if active.is_empty() && waiting.is_empty() {
            break;
        }
        let rate = if active.is_empty() {
            0.0
        } else {
            bandwidth
                .per_connection
                .min(bandwidth.link / active.len() as f64)
        };
        // Next event: a transfer finishing, or a response starting its body.
        let finish = active
            .iter()
            .map(|&i| {
                if rate.is_infinite() {
                    0.0
                } else {
                    layers[i].remaining / rate
                }
            })
            .fold(f64::INFINITY, f64::min);
        let arrival = waiting
            .iter()
            .map(|b| b - now)
            .fold(f64::INFINITY, f64::min);
        let dt = finish.min(arrival).max(0.0);
        for &i in &active {
            let l = &mut layers[i];
            l.remaining -= if rate.is_infinite() {
                l.remaining
            } else {
                rate * dt
            };
        }
        now += dt;
        for &i in &active {
            let l = &mut layers[i];
            if l.remaining <= 1e-6 {
                l.phase = Phase::Done;
                l.run.download_end_s = now;
                client.release_blob_connection();
            }
        }
    }
    let done = layers.iter().filter(|l| l.phase == Phase::Done).count();
    if done < n {
        return Err(SimError::EventBudget {
            stage: SimLoop::Download,
            budget,
            done,
            total: n,
        });
    }
    Ok(layers.into_iter().map(|l| l.run).collect())
}
