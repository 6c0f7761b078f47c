//! A TCP forwarder in front of a real registry that sends its answers at a fixed
//! rate, so a pull on loopback lasts as long as a test needs. Stops on drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running forwarder.
pub struct Throttle {
    /// `127.0.0.1:PORT` to connect to instead of the upstream.
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Throttle {
    /// Forwards to `upstream`, its answers at `bytes_per_s`.
    pub fn start(upstream: &str, bytes_per_s: u64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let Ok(server) = TcpStream::connect(&upstream) else {
                                continue;
                            };
                            client.set_nonblocking(false).unwrap();
                            let (c2, s2) =
                                (client.try_clone().unwrap(), server.try_clone().unwrap());
                            let (st1, st2) = (stop.clone(), stop.clone());
                            std::thread::spawn(move || pump(client, server, None, &st1));
                            std::thread::spawn(move || pump(s2, c2, Some(bytes_per_s), &st2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Throttle {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to` until EOF, an error or the stop, at most `rate` bytes/s.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<u64>, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16 << 10];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if let Some(r) = rate {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
