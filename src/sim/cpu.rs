//! Processor sharing for pulltime's streaming policy. Decoder threads (one per
//! core, taking layers in manifest order) and one in-order extractor share the
//! host's cores with the transfers (the download tasks hashing and spooling each
//! blob as it arrives, and the registry when it serves from the same host). Each stage
//! consumes only what its producer has made: decoding follows the download,
//! extraction follows decoding. Between events every rate is constant, so the
//! simulation steps from event to event: a stage finishing or catching up with its
//! producer, a body starting or a download ending.

use super::{SimError, SimLoop};

/// One layer as the CPU sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamLayer {
    /// First byte of the body.
    pub body_s: f64,
    /// Last byte of the body.
    pub download_end_s: f64,
    /// Seconds of one core to hash and decompress the whole layer.
    pub decode_work: f64,
    /// Seconds of one core to extract it.
    pub extract_work: f64,
    /// Cores the transfer itself takes while the body is in flight: the download
    /// task hashing the blob and writing it to its spool, and a registry on this
    /// host serving it (their CPU spread over the transfer).
    pub transfer_cores: f64,
}

/// When each layer finished decoding and extracting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamTimes {
    /// Decoded (and hashed).
    pub decoded_s: f64,
    /// Applied to the root filesystem.
    pub extracted_s: f64,
}

const EPS: f64 = 1e-12;

/// Fraction of layer `l`'s body that has arrived at `t`.
fn downloaded(l: &StreamLayer, t: f64) -> f64 {
    if t >= l.download_end_s {
        1.0
    } else if t <= l.body_s {
        0.0
    } else {
        (t - l.body_s) / (l.download_end_s - l.body_s)
    }
}

/// Rate (fraction per second) at which layer `l`'s body arrives at `t`.
fn download_rate(l: &StreamLayer, t: f64) -> f64 {
    if t >= l.body_s && t < l.download_end_s {
        1.0 / (l.download_end_s - l.body_s)
    } else {
        0.0
    }
}

/// A stage that could run now: its work, progress, and the most it may consume
/// (cores) because it has caught up with its producer.
struct Job {
    work: f64,
    cap: f64,
    share: f64,
}

/// Max-min fair shares of `capacity` cores among jobs, each at most its cap.
fn water_fill(jobs: &mut [Job], capacity: f64) {
    let mut left = capacity.max(0.0);
    let mut open: Vec<usize> = (0..jobs.len()).collect();
    open.sort_by(|&a, &b| jobs[a].cap.total_cmp(&jobs[b].cap));
    let mut n = open.len();
    for &j in &open {
        let fair = left / n as f64;
        let s = jobs[j].cap.min(fair);
        jobs[j].share = s;
        left -= s;
        n -= 1;
    }
}

/// Runs the decoders and the extractor over `layers` (in manifest order) on
/// `cpus` cores, starting at `start`. Fails if the simulation cannot finish.
pub fn stream(
    layers: &[StreamLayer],
    cpus: usize,
    start: f64,
) -> Result<Vec<StreamTimes>, SimError> {
    // Each event finishes a stage, lets a stage catch up with its producer, or
    // passes a body start or download end: a few per layer and decoder.
    let budget = 16 * layers.len() * cpus.max(1) + 64;
    stream_within(layers, cpus, start, budget)
}

/// [`stream`] in at most `budget` steps.
fn stream_within(
    layers: &[StreamLayer],
    cpus: usize,
    start: f64,
    budget: usize,
) -> Result<Vec<StreamTimes>, SimError> {
    let n = layers.len();
    let cores = cpus.max(1) as f64;
    let mut out = vec![StreamTimes::default(); n];
    if n == 0 {
        return Ok(out);
    }
    // Progress of each layer's decoding and extraction, as fractions.
    let mut dec = vec![0.0f64; n];
    let mut ext = vec![0.0f64; n];
    let mut dec_done = vec![false; n];
    let mut decoders: Vec<usize> = Vec::new();
    let mut next_decode = 0usize;
    let mut extracting = 0usize;
    // Transfer CPU that has arrived but not yet run, in core-seconds.
    let mut backlog = 0.0f64;
    let mut t = start;
    for _ in 0..budget {
        // Free decoder threads take the next layers in order.
        decoders.retain(|&i| !dec_done[i]);
        while decoders.len() < cpus.max(1) && next_decode < n {
            decoders.push(next_decode);
            next_decode += 1;
        }
        if extracting >= n {
            break;
        }
        // Zero-work stages finish as soon as their input is complete.
        let mut progressed = false;
        for &i in &decoders {
            let l = &layers[i];
            if l.decode_work <= EPS && downloaded(l, t) >= 1.0 && !dec_done[i] {
                dec[i] = 1.0;
                dec_done[i] = true;
                out[i].decoded_s = t;
                progressed = true;
            }
        }
        let x = extracting;
        if dec_done[x] && layers[x].extract_work <= EPS {
            ext[x] = 1.0;
            out[x].extracted_s = t;
            extracting += 1;
            progressed = true;
        }
        if progressed {
            continue;
        }
        // Who runs, and how fast each may go.
        let mut jobs = Vec::new();
        let mut decode_jobs = Vec::new();
        for &i in &decoders {
            let l = &layers[i];
            if t + EPS < l.body_s || l.decode_work <= EPS {
                continue;
            }
            let caught_up = dec[i] >= downloaded(l, t) - 1e-9;
            let cap = if caught_up && downloaded(l, t) < 1.0 {
                (download_rate(l, t) * l.decode_work).min(1.0)
            } else {
                1.0
            };
            decode_jobs.push((i, jobs.len()));
            jobs.push(Job {
                work: l.decode_work,
                cap,
                share: 0.0,
            });
        }
        // The transfers' threads (woken by the network, so the scheduler runs them
        // first) take what they need, up to nine tenths of the cores; what they
        // could not run waits in the backlog, which then runs at that ceiling
        // until it is drained. (Decoders are not held back by it: they may
        // decode bytes whose hashing is still waiting.)
        let arriving: f64 = layers
            .iter()
            .filter(|l| t + EPS >= l.body_s && t < l.download_end_s)
            .map(|l| l.transfer_cores)
            .sum();
        let ceiling = 0.9 * cores;
        let transferring = if backlog > EPS {
            ceiling
        } else {
            arriving.min(ceiling)
        };
        let capacity = cores - transferring;
        // The extractor tails its layer's decoding from the first decoded byte; its
        // cap depends on the decoder's share, so the cores are shared out twice.
        let decoding_x = decoders.contains(&x) && t + EPS >= layers[x].body_s;
        let ext_job =
            (layers[x].extract_work > EPS && (dec_done[x] || decoding_x)).then_some(jobs.len());
        if ext_job.is_some() {
            jobs.push(Job {
                work: layers[x].extract_work,
                cap: 1.0,
                share: 0.0,
            });
        }
        let decode_rate = |jobs: &[Job], i: usize| -> f64 {
            if dec_done[i] {
                return 0.0;
            }
            decode_jobs
                .iter()
                .find(|(d, _)| *d == i)
                .map_or(0.0, |&(_, j)| jobs[j].share / jobs[j].work)
        };
        water_fill(&mut jobs, capacity);
        if let Some(j) = ext_job {
            let caught_up = !dec_done[x] && ext[x] >= dec[x] - 1e-9;
            if caught_up {
                jobs[j].cap = (decode_rate(&jobs, x) * layers[x].extract_work).min(1.0);
                water_fill(&mut jobs, capacity);
            }
        }
        // The next event.
        let mut dt = f64::INFINITY;
        for l in layers {
            for edge in [l.body_s, l.download_end_s] {
                if edge > t + EPS {
                    dt = dt.min(edge - t);
                }
            }
        }
        if backlog > EPS && transferring > arriving + EPS {
            dt = dt.min(backlog / (transferring - arriving));
        }
        for &(i, j) in &decode_jobs {
            let rate = jobs[j].share / jobs[j].work;
            if rate > EPS {
                dt = dt.min((1.0 - dec[i]) / rate);
                let (have, arriving) = (downloaded(&layers[i], t), download_rate(&layers[i], t));
                if have < 1.0 && rate > arriving + EPS && dec[i] < have - 1e-9 {
                    dt = dt.min((have - dec[i]) / (rate - arriving));
                }
            }
        }
        if let Some(j) = ext_job {
            let rate = jobs[j].share / jobs[j].work;
            if rate > EPS {
                dt = dt.min((1.0 - ext[x]) / rate);
                let producing = decode_rate(&jobs, x);
                if !dec_done[x] && rate > producing + EPS && ext[x] < dec[x] - 1e-9 {
                    dt = dt.min((dec[x] - ext[x]) / (rate - producing));
                }
            }
        }
        if !dt.is_finite() {
            // Nothing can move: a stage waits on input that never comes.
            return Err(SimError::Stalled {
                at_s: t,
                done: extracting,
                total: n,
            });
        }
        let dt = dt.max(EPS);
        // Land exactly on a body start or download end that this step reaches:
        // `t + (edge - t)` can round to just below the edge, where the download
        // would look not yet started and the step's event would be lost.
        let landing = layers
            .iter()
            .flat_map(|l| [l.body_s, l.download_end_s])
            .find(|e| (t + dt - e).abs() <= 1e-9);
        for &(i, j) in &decode_jobs {
            let have = downloaded(&layers[i], t + dt);
            dec[i] = (dec[i] + dt * jobs[j].share / jobs[j].work).min(have);
            if dec[i] >= 1.0 - 1e-9 {
                dec[i] = 1.0;
                dec_done[i] = true;
                out[i].decoded_s = t + dt;
            }
        }
        if let Some(j) = ext_job {
            ext[x] = (ext[x] + dt * jobs[j].share / jobs[j].work).min(dec[x]);
            if dec_done[x] && ext[x] >= 1.0 - 1e-9 {
                ext[x] = 1.0;
                out[x].extracted_s = t + dt;
                extracting += 1;
            }
        }
        backlog = (backlog + dt * (arriving - transferring)).max(0.0);
        t = landing.unwrap_or(t + dt);
    }
    if extracting < n {
        return Err(SimError::EventBudget {
            stage: SimLoop::Cpu,
            budget,
            done: extracting,
            total: n,
        });
    }
    // Transfer work still waiting when the last layer is applied (every download
    // has ended by then) runs at the ceiling: the pull is done when it is (the
    // blob's digest is checked in it).
    if backlog > EPS {
        let last = &mut out[n - 1];
        last.extracted_s = last.extracted_s.max(t + backlog / (0.9 * cores));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(body: f64, end: f64, decode: f64, extract: f64) -> StreamLayer {
        StreamLayer {
            body_s: body,
            download_end_s: end,
            decode_work: decode,
            extract_work: extract,
            transfer_cores: 0.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn decoding_and_extraction_overlap_on_two_cores() {
        // Both stages of 1 s, bytes already here: each gets a core.
        let t = stream(&[layer(0.0, 0.0, 1.0, 1.0)], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 1.0), "{t:?}");
        assert!(close(t[0].extracted_s, 1.0), "{t:?}");
    }

    #[test]
    fn one_core_is_shared_by_both_stages() {
        // 2 s of work on one core: each stage at half speed, both done at 2 s.
        let t = stream(&[layer(0.0, 0.0, 1.0, 1.0)], 1, 0.0).unwrap();
        assert!(close(t[0].extracted_s, 2.0), "{t:?}");
    }

    #[test]
    fn decoding_cannot_outrun_the_download() {
        // 0.1 s of decoding over a 4 s download ends with the last byte; extraction
        // (0.2 s) follows decoding and ends with it too.
        let t = stream(&[layer(1.0, 5.0, 0.1, 0.2)], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 5.0), "{t:?}");
        assert!(close(t[0].extracted_s, 5.0), "{t:?}");
    }

    #[test]
    fn extraction_is_in_order_and_decoders_are_one_per_core() {
        // Three layers here at once, 1 s decode and 1 s extract each, 2 cores.
        // t=0..1.5: two decoders and the extractor (capped by decoder 0) share
        // 2 cores at 2/3 each; decoders 0 and 1 finish at 1.5, extraction of layer
        // 0 with them. Then decoder 2 and the extractor on layer 1 get a core each:
        // layer 1 extracted at 2.5, layer 2 decoded at 2.5 and extracted at 3.5.
        let l = layer(0.0, 0.0, 1.0, 1.0);
        let t = stream(&[l, l, l], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 1.5), "{t:?}");
        assert!(close(t[0].extracted_s, 1.5), "{t:?}");
        assert!(close(t[1].extracted_s, 2.5), "{t:?}");
        assert!(close(t[2].decoded_s, 2.5), "{t:?}");
        assert!(close(t[2].extracted_s, 3.5), "{t:?}");
    }

    #[test]
    fn steps_that_round_short_of_a_body_start_still_start_it() {
        // `start + (body - start)` rounds to just below `body` for these values:
        // the decoder must still start at the body, not wait for a later event.
        let (start, body) = (0.34841455114238506, 19.354585206576193);
        let instant = stream(&[layer(body, body, 0.5, 0.5)], 2, start).unwrap();
        assert!(close(instant[0].decoded_s, body + 0.5), "{instant:?}");
        assert!(close(instant[0].extracted_s, body + 0.5), "{instant:?}");
        let paced = stream(&[layer(body, body + 1.0, 0.5, 0.1)], 2, start).unwrap();
        assert!(close(paced[0].decoded_s, body + 1.0), "{paced:?}");
        assert!(close(paced[0].extracted_s, body + 1.0), "{paced:?}");
    }

    #[test]
    fn a_registry_on_the_host_takes_cores() {
        // A 1 s download whose serving takes 1.5 of 2 cores: the 0.5 s of decoding
        // needs 0.5 cores to keep up, exactly what is left, so it ends with the
        // last byte.
        let mut slow = layer(0.0, 1.0, 0.5, 0.0);
        slow.transfer_cores = 1.5;
        let t = stream(&[slow], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 1.0), "{t:?}");
        slow.transfer_cores = 1.75;
        // Only 0.25 cores: 0.25 core-s done by 1 s, the other 0.25 at full speed
        // after: 1.25 s.
        let t = stream(&[slow], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 1.25), "{t:?}");
    }

    #[test]
    fn transfer_cpu_beyond_the_cores_is_not_free() {
        // Serving wants 2 of 2 cores for 1 s but gets at most 1.8: by 1 s the
        // decoder has done 0.2 of its 0.5 s and 0.2 core-s of serving wait. They run
        // first, at 1.8 cores, for b = 0.2 / 1.8 s while the decoder keeps 0.2;
        // then the decoder has a core for the rest. All 2.5 core-s are done.
        let mut busy = layer(0.0, 1.0, 0.5, 0.0);
        busy.transfer_cores = 2.0;
        let t = stream(&[busy], 2, 0.0).unwrap();
        let b = 0.2 / 1.8;
        let expected = 1.0 + b + (0.5 - 0.2 - 0.2 * b);
        assert!(close(t[0].decoded_s, expected), "{t:?} vs {expected}");
        // Serving wants 4 cores over 1 s; the decoder keeps pace with the bytes
        // and is done at 1 s, with 2.2 core-s of serving still waiting: they run
        // at 1.8 cores, and the pull ends when they are done.
        let mut heavy = layer(0.0, 1.0, 0.1, 0.0);
        heavy.transfer_cores = 4.0;
        let t = stream(&[heavy], 2, 0.0).unwrap();
        assert!(close(t[0].decoded_s, 1.0), "{t:?}");
        assert!(close(t[0].extracted_s, 1.0 + 2.2 / 1.8), "{t:?}");
    }

    #[test]
    fn running_out_of_events_is_an_error() {
        // Three layers need more than two steps.
        let l = layer(0.0, 0.0, 1.0, 1.0);
        let err = stream_within(&[l, l, l], 2, 0.0, 2).unwrap_err();
        assert!(
            matches!(
                err,
                SimError::EventBudget {
                    stage: SimLoop::Cpu,
                    budget: 2,
                    total: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_stage_that_cannot_progress_is_an_error() {
        // Infinite decoding never produces anything to extract.
        let err = stream(&[layer(0.0, 0.0, f64::INFINITY, 1.0)], 1, 0.0).unwrap_err();
        assert_eq!(
            err,
            SimError::Stalled {
                at_s: 0.0,
                done: 0,
                total: 1
            }
        );
    }
}
