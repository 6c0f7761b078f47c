//! The spool's unit tests: where bytes go (memory or file), when a writer
//! waits, and what a reader sees.

use super::*;
use std::sync::Arc;

/// A spool at `path` that nobody stops.
fn spool_at(path: PathBuf, when_full: WhenFull) -> Arc<Spool> {
    Arc::new(Spool::new(path, when_full, CancellationToken::new()))
}

fn block(i: usize, len: usize) -> Bytes {
    Bytes::from(vec![i as u8; len])
}

fn check(out: &[u8], len: usize) {
    assert!(
        out.chunks(len)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8)),
        "bytes out of order"
    );
}

#[test]
fn bytes_read_ahead_of_the_reader_go_to_the_file_and_the_rest_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_at(dir.path().join("s"), WhenFull::Spill);
    let mut w = spool.writer();
    // Nobody reads yet: to the file.
    for i in 0..3 {
        w.push(block(i, 1000)).unwrap();
    }
    assert_eq!(spool.spilled(), 3000);
    let mut r = spool.reader(Busy::default());
    // The reader tails now: in memory, up to the window; past it, spilled.
    for i in 3..6 {
        w.push(block(i, 1000)).unwrap();
    }
    assert_eq!(spool.spilled(), 3000);
    w.push(Bytes::from(vec![6u8; WINDOW])).unwrap();
    assert_eq!(spool.spilled(), 3000 + WINDOW as u64);
    spool.finish(true);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 6000 + WINDOW);
    check(&out[..6000], 1000);
    assert!(out[6000..].iter().all(|b| *b == 6));
    spool.remove();
    assert!(!dir.path().join("s").exists());
}

#[test]
fn a_waiting_writer_keeps_to_the_window_and_a_reader_that_leaves_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_at(dir.path().join("s"), WhenFull::Wait);
    let r = spool.reader(Busy::default());
    let len = WINDOW / 8;
    let writer = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            let mut w = spool.writer();
            let mut waited = Duration::ZERO;
            for i in 0..64 {
                waited += w.push(block(i, len)).unwrap();
            }
            spool.finish(true);
            waited
        })
    };
    // The writer fills the window and waits for the reader: it neither
    // spills nor goes past the window.
    let deadline = Instant::now() + Duration::from_secs(20);
    while spool.lock().in_memory < WINDOW && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(spool.lock().in_memory, WINDOW);
    assert_eq!(spool.spilled(), 0);
    let mut out = Vec::new();
    let mut r = r.take(32 * len as u64);
    r.read_to_end(&mut out).unwrap();
    check(&out, len);
    // The reader stops early, as tar does at the end-of-archive blocks: the
    // writer finishes instead of waiting forever.
    drop(r);
    let waited = writer.join().unwrap();
    assert!(waited > Duration::ZERO);
    assert_eq!(spool.spilled(), 0);
    assert!(!dir.path().join("s").exists());
}

#[test]
fn a_waiting_writer_spills_while_its_reader_catches_up_at_most_as_much_as_there_was() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_at(dir.path().join("s"), WhenFull::Wait);
    let len = WINDOW / 8;
    let (ahead, went_ahead) = std::sync::mpsc::channel();
    let (go, went) = std::sync::mpsc::channel::<()>();
    let writer = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            let mut w = spool.writer();
            // Decoded ahead of its turn: nobody reads yet, to the file.
            for i in 0..4 {
                w.push(block(i, len)).unwrap();
            }
            ahead.send(()).unwrap();
            went.recv().unwrap();
            for i in 4..32 {
                w.push(block(i, len)).unwrap();
            }
            spool.finish(true);
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    went_ahead.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(spool.spilled(), 4 * len as u64);
    // The applier comes to the layer; its reader does not read yet. With four
    // blocks in the file to catch up with, the writer fills the window, then
    // spills rather than waits, but no more than those four blocks: a reader
    // slower than its writer must not turn waiting into spilling for good.
    let mut r = spool.reader(Busy::default());
    go.send(()).unwrap();
    while spool.spilled() < 8 * len as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        spool.spilled(),
        8 * len as u64,
        "the writer spilled while its reader caught up"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        spool.spilled(),
        8 * len as u64,
        "the writer spilled more than there was to catch up with"
    );
    assert_eq!(spool.lock().in_memory, WINDOW);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 32 * len);
    check(&out, len);
    writer.join().unwrap();
    // The writer spilled as much as the reader read in that round: from then on
    // it waited for its reader.
    assert_eq!(spool.spilled(), 8 * len as u64);
    assert_eq!(spool.lock().file_backlog, 0);
}

#[test]
fn catching_up_goes_on_in_rounds_only_while_the_writer_stays_within_the_bound() {
    let mut s = State::default();
    // 400 bytes decoded ahead, then the reader comes.
    s.spilled_to_file(400);
    s.start_reading();
    assert!(s.may_spill_for_catch_up(100));
    s.spilled_to_file(100);
    s.read_from_file(300);
    s.read_from_file(100);
    // The writer spilled less than the round and never came to its bound: it
    // is the slower one. Round two: the 100 bytes it spilled meanwhile, next
    // in the file.
    assert_eq!((s.catch_up, s.round, s.round_spilled), (100, 100, 0));
    assert!(s.may_spill_for_catch_up(60));
    s.spilled_to_file(60);
    // 60 + 50 would pass the round's 100: the writer waits instead...
    assert!(!s.may_spill_for_catch_up(50));
    s.read_from_file(100);
    // ...and, having come to the bound, is the faster one: it waits for its
    // reader from now on, though it spilled less than the round (with rounds
    // shrinking by less than a block each, a faster writer would otherwise
    // spill nearly its whole stream).
    assert_eq!(s.catch_up, 0);
    assert!(!s.may_spill_for_catch_up(1));
    assert_eq!(s.file_backlog, 60);
    // Paused (its layer waits for the layers below), the reader comes back to
    // what is in the file by then: a new round.
    s.reading = false;
    s.spilled_to_file(40);
    s.start_reading();
    assert_eq!((s.catch_up, s.round), (100, 100));
    // A writer that spills the whole round without being refused is as fast
    // as its reader: that ends it too, or rounds of the same size would go on.
    assert!(s.may_spill_for_catch_up(100));
    s.spilled_to_file(100);
    s.read_from_file(100);
    assert_eq!(s.catch_up, 0);
    assert!(!s.may_spill_for_catch_up(1));
    s.read_from_file(100);
    assert_eq!(s.file_backlog, 0);
}

#[test]
fn reader_tails_the_writer_and_sees_failure() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_at(dir.path().join("blob"), WhenFull::Spill);
    let writer = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            let mut w = spool.writer();
            for i in 0..50 {
                w.push(block(i, 1000)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            spool.finish(true);
        })
    };
    let mut out = Vec::new();
    spool.reader(Busy::default()).read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    assert_eq!(out.len(), 50_000);
    check(&out, 1000);

    // A writer that panics with its guard armed fails the spool for its readers
    // instead of leaving them waiting.
    let orphan = spool_at(dir.path().join("b3"), WhenFull::Spill);
    let w = {
        let orphan = orphan.clone();
        std::thread::spawn(move || {
            let _guard = orphan.guard();
            panic!("writer died");
        })
    };
    assert!(w.join().is_err());
    assert!(orphan.reader(Busy::default()).read(&mut [0; 10]).is_err());

    let failed = spool_at(dir.path().join("b2"), WhenFull::Spill);
    failed.finish(false);
    assert!(failed.reader(Busy::default()).read(&mut [0; 10]).is_err());

    // The user's stop ends a waiting read.
    let stop = CancellationToken::new();
    let idle = Spool::new(dir.path().join("b4"), WhenFull::Wait, stop.clone());
    stop.cancel();
    let e = idle.reader(Busy::default()).read(&mut [0; 10]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Interrupted);
}
