//! Layers applied by several threads at once, with the result of applying them
//! one after another.
//!
//! Only paths that meet no symlink are ever applied beside other layers: then a
//! name in a stream is the place it lands, and two layers that touch disjoint
//! names (and merge shared directories) cannot change each other's results. So
//! a layer's first entry waits until every layer below has an index (is decoded),
//! and goes on beside them only if every entry of every pending layer below
//! resolves, in the root as it is, to its own name, and none of their links lies
//! on the way to another's entry; otherwise it waits until they are applied. Its
//! entries that go through a symlink, or below a link one of them will make,
//! make it wait too (and go on in order); its
//! entries that interact with theirs (a path in common except merging
//! directories, one below what they replace or remove, one replacing what they
//! write below it) are set aside ([`super::aside`]) and applied in order after
//! them. Directory metadata is set layer by layer in order ([`FinishDirs`]),
//! after the layers below, and a layer applied beside them sets its directories'
//! owners again then, since they may have merged into them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::dirs::{FinishDirs, Mtime, Settled};
use super::error::LayerError;
use super::index::{LayerIndex, Touch};
use super::whiteout::{self, Whiteout};

/// The shared state of applying `n` layers to one root.
pub struct ApplyOrder {
    root: PathBuf,
    next: AtomicUsize,
    applied: Vec<AtomicBool>,
    stopped: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    /// Held while finishing layers, so that they finish in order; the mtimes
    /// the finished layers left on directories.
    finishing: Mutex<Settled>,
    /// Each directory's mtime before the first layer changed its entries.
    first_mtimes: Mutex<Settled>,
    /// A layer whose directory metadata could not be set, and why: the cause of
    /// the stop that follows.
    failed_finish: Mutex<Option<(usize, LayerError)>>,
}

struct State {
    indices: Vec<Option<Arc<LayerIndex>>>,
    finishes: Vec<Option<FinishDirs>>,
    /// When each layer was applied, or why not.
    outcomes: Vec<Option<Result<Instant, LayerError>>>,
    next_finish: usize,
}

impl ApplyOrder {
    /// `n` layers to apply to `root`, none indexed yet.
    pub fn new(root: &Path, n: usize) -> ApplyOrder {
        ApplyOrder {
            root: root.to_path_buf(),
            next: AtomicUsize::new(0),
            applied: (0..n).map(|_| AtomicBool::new(false)).collect(),
            stopped: AtomicBool::new(false),
            state: Mutex::new(State {
                indices: (0..n).map(|_| None).collect(),
                finishes: (0..n).map(|_| None).collect(),
                outcomes: (0..n).map(|_| None).collect(),
                next_finish: 0,
            }),
            changed: Condvar::new(),
            finishing: Mutex::new(Settled::default()),
            first_mtimes: Mutex::new(Settled::default()),
            failed_finish: Mutex::new(None),
        }
    }

    /// The root the layers are applied to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The next layer for an applier thread to take, lowest first.
    pub fn take_layer(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        (i < self.applied.len() && !self.stopped.load(Ordering::SeqCst)).then_some(i)
    }

    /// Layer `i`'s index, once its whole stream is known.
    pub fn set_index(&self, i: usize, index: LayerIndex) {
        self.lock().indices[i] = Some(Arc::new(index));
        self.changed.notify_all();
    }

    /// Wakes and fails every wait: a layer failed or the pull was stopped.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _state = self.lock();
        self.changed.notify_all();
    }

    /// Whether layer `i` is applied, its directory metadata included.
    pub fn is_applied(&self, i: usize) -> bool {
        self.applied[i].load(Ordering::SeqCst)
    }

    /// When layer `i` was applied, its directory metadata included (blocks until
    /// then, or until stopped).
    pub fn wait_applied(&self, i: usize) -> Result<Instant, LayerError> {
        let mut state = self.lock();
        loop {
            if let Some(outcome) = state.outcomes[i].take() {
                return outcome;
            }
            if self.stopped.load(Ordering::SeqCst) {
                return Err(stopped());
            }
            state = self.changed.wait(state).expect("apply order lock");
        }
    }

    /// The layer whose directory metadata could not be set, and why, if one
    /// failed: the cause of the stop (what the other layers saw then is its
    /// consequence).
    pub fn failed_finish(&self) -> Option<(usize, LayerError)> {
        self.failed_finish
            .lock()
            .expect("failed finish lock")
            .take()
    }

    /// Layer `i`'s entries are all in place: its directory metadata is set now if
    /// every layer below is applied, else by whichever thread applies the last of
    /// them, so that no applier thread waits for that.
    pub(super) fn entries_done(&self, i: usize, finish: FinishDirs) {
        self.lock().finishes[i] = Some(finish);
        let mut settled = self.finishing.lock().expect("finishing lock");
        loop {
            let (k, finish) = {
                let mut state = self.lock();
                let k = state.next_finish;
                match state.finishes.get_mut(k).and_then(Option::take) {
                    Some(f) => (k, f),
                    None => return,
                }
            };
            let first = self.first_mtimes.lock().expect("first mtimes lock");
            let outcome = match finish.run(&self.root, &mut settled, &first) {
                Ok(()) => Ok(Instant::now()),
                Err(e) => {
                    self.failed_finish
                        .lock()
                        .expect("failed finish lock")
                        .get_or_insert((k, e));
                    Err(stopped())
                }
            };
            let ok = outcome.is_ok();
            let mut state = self.lock();
            state.outcomes[k] = Some(outcome);
            state.next_finish += 1;
            self.applied[k].store(ok, Ordering::SeqCst);
            drop(state);
            self.changed.notify_all();
            if !ok {
                self.stop();
                return;
            }
        }
    }

    /// The gate layer `layer`'s entries pass. `pause(true)` is called before it
    /// waits and `pause(false)` after: the stream's producer should not wait for a
    /// reader that is waiting itself.
    pub fn gate<'a>(&'a self, layer: usize, pause: &'a dyn Fn(bool)) -> Gate<'a> {
        Gate {
            order: self,
            layer,
            pause,
            pending: None,
            lowest_unapplied: 0,
            in_order: layer == 0,
            ahead: false,
            waited: Duration::ZERO,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("apply order lock")
    }
}

pub(super) fn stopped() -> LayerError {
    LayerError::Read(std::io::Error::other(
        "stopped: another layer failed or the pull was interrupted",
    ))
}

/// How an entry touches the root: the path as its stream names it and as it
/// resolves now, for the entry itself or a hard link's target.
#[derive(Debug, Clone)]
pub(super) struct EntryTouch {
    pub named: PathBuf,
    pub resolved: PathBuf,
    pub touch: Touch,
}

impl EntryTouch {
    /// The touch of an entry (its cleaned path `comps`, its resolved parent, its
    /// type); `None` for names that touch nothing (aufs metadata, invalid
    /// whiteouts, which the applier refuses).
    pub(super) fn of_entry(
        comps: &[OsString],
        parent: &Path,
        kind: tar::EntryType,
    ) -> Option<EntryTouch> {
        let (last, parent_comps) = comps.split_last()?;
        let named_parent: PathBuf = parent_comps.iter().collect();
        let (named, resolved, touch) = match whiteout::classify(last) {
            Whiteout::Opaque => (named_parent, parent.to_path_buf(), Touch::Opaque),
            Whiteout::Delete(t) => (named_parent.join(t), parent.join(t), Touch::Whiteout),
            Whiteout::None if kind == tar::EntryType::Directory => {
                (named_parent.join(last), parent.join(last), Touch::Dir)
            }
            Whiteout::None => (named_parent.join(last), parent.join(last), Touch::Other),
            Whiteout::Meta | Whiteout::Invalid => return None,
        };
        Some(EntryTouch {
            named,
            resolved,
            touch,
        })
    }
}

/// A layer below, not yet applied when the gate first looked.
struct Pending {
    layer: usize,
    index: Arc<LayerIndex>,
}

/// What an entry may do beside the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Be applied now (or, every layer below being applied, in order).
    Go,
    /// Wait, set aside, until the layers below are applied.
    SetAside,
    /// Not be set aside: the layer waits for the layers below and goes on in
    /// order.
    InOrder,
}

/// What one layer's entries pass before they touch the root.
pub struct Gate<'a> {
    order: &'a ApplyOrder,
    layer: usize,
    pause: &'a dyn Fn(bool),
    pending: Option<Vec<Pending>>,
    lowest_unapplied: usize,
    /// Every layer below is applied: nothing to check.
    in_order: bool,
    /// Some entry was applied before the layers below were.
    ahead: bool,
    waited: Duration,
}

impl Gate<'_> {
    /// A layer is about to change the entries of directory `rel`, which had
    /// `seen` (mtime, inode) when this layer first looked: kept if no layer
    /// changed it before ([`FinishDirs::run`]).
    pub(super) fn note_first_mtime(&self, rel: &std::path::Path, seen: (Mtime, u64)) {
        let mut first = self.order.first_mtimes.lock().expect("first mtimes lock");
        first.entry(rel.to_path_buf()).or_insert(seen);
    }

    /// What an entry touching `touches` may do while layers below are still being
    /// applied (waiting first, once, until every layer below is indexed).
    pub(super) fn verdict(&mut self, touches: &[EntryTouch]) -> Result<Verdict, LayerError> {
        if self.in_order || self.lower_applied() {
            self.in_order = true;
            return Ok(Verdict::Go);
        }
        if self.pending.is_none() {
            self.prepare()?;
            if self.in_order {
                return Ok(Verdict::Go);
            }
        }
        // Through a symlink, now or once a layer below has made its link: where
        // it lands depends on more than its name, and setting it aside would
        // not keep the layer's order. In order.
        let pending = || self.pending.iter().flatten();
        if touches
            .iter()
            .any(|t| t.named != t.resolved || pending().any(|p| p.index.link_above(&t.named)))
        {
            tracing::debug!(layer = self.layer, path = %touches[0].named.display(), "through a symlink: in order");
            return Ok(Verdict::InOrder);
        }
        let root = &self.order.root;
        let interacts = touches.iter().any(|t| {
            pending().any(|p| {
                !self.order.is_applied(p.layer)
                    && (p.index.interacts(&t.named, t.touch)
                        // A directory both merge must not be something else
                        // now, or both would race to replace it.
                        || (t.touch == Touch::Dir
                            && p.index.merges(&t.named)
                            && root
                                .join(&t.named)
                                .symlink_metadata()
                                .is_ok_and(|m| !m.is_dir())))
            })
        });
        if interacts {
            tracing::debug!(layer = self.layer, path = %touches[0].named.display(), touch = ?touches[0].touch, "interacts with a layer below still being applied");
            return Ok(Verdict::SetAside);
        }
        self.ahead = true;
        Ok(Verdict::Go)
    }

    /// Waits until every layer below is applied; the layer goes on in order.
    pub(super) fn wait_lower(&mut self) -> Result<(), LayerError> {
        if self.in_order {
            return Ok(());
        }
        let t = Instant::now();
        (self.pause)(true);
        let mut state = self.order.lock();
        let r = loop {
            if self.lower_applied() {
                break Ok(());
            }
            if self.order.stopped.load(Ordering::SeqCst) {
                break Err(stopped());
            }
            state = self.order.changed.wait(state).expect("apply order lock");
        };
        drop(state);
        (self.pause)(false);
        self.waited += t.elapsed();
        self.in_order = r.is_ok();
        r
    }

    /// Whether every layer below is applied (as far as this gate has seen).
    pub(super) fn in_order(&self) -> bool {
        self.in_order
    }

    /// Whether some entry was applied before the layers below were.
    pub(super) fn went_ahead(&self) -> bool {
        self.ahead
    }

    /// Time spent waiting for the layers below.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    fn lower_applied(&mut self) -> bool {
        while self.lowest_unapplied < self.layer && self.order.is_applied(self.lowest_unapplied) {
            self.lowest_unapplied += 1;
        }
        self.lowest_unapplied == self.layer
    }

    /// Waits until every layer below is applied or indexed, then takes the indices
    /// of those still pending, or goes in order when they cannot tell.
    fn prepare(&mut self) -> Result<(), LayerError> {
        // Not paused meanwhile: the layers below decode first, so this wait is
        // short, and this layer's decoder had better wait at its window than
        // write ahead into a file.
        let t = Instant::now();
        let mut state = self.order.lock();
        let indices = loop {
            if self.order.stopped.load(Ordering::SeqCst) {
                return Err(stopped());
            }
            let known =
                (0..self.layer).all(|i| self.order.is_applied(i) || state.indices[i].is_some());
            if known {
                break state.indices[..self.layer].to_vec();
            }
            state = self.order.changed.wait(state).expect("apply order lock");
        };
        drop(state);
        self.waited += t.elapsed();
        let pending: Vec<Pending> = indices
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.order.is_applied(*i))
            .filter_map(|(layer, index)| index.map(|index| Pending { layer, index }))
            .collect();
        // Every entry of the layers below must land where its name says, through
        // real directories only: then nothing this layer does without touching
        // their paths can change where they land, nor they where its entries do.
        let root = &self.order.root;
        let usable = pending
            .iter()
            .all(|p| p.index.usable() && p.index.direct_in(root));
        // A pending layer's symlink on the way to a higher pending layer's entry.
        let redirected = pending.iter().enumerate().any(|(k, low)| {
            pending[k + 1..]
                .iter()
                .any(|high| low.index.redirects(&high.index))
        });
        self.pending = Some(pending);
        if !usable || redirected {
            tracing::debug!(
                layer = self.layer,
                usable,
                redirected,
                "the layers below cannot tell: waits for them"
            );
            return self.wait_lower();
        }
        Ok(())
    }
}
