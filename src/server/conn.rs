//! The listener the registry serves from: a TCP listener whose connections can be
//! told to end with a reset (RST) instead of a clean close, which is how fault
//! injection produces "connection reset after N bytes".

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Control over one accepted connection.
#[derive(Debug, Default)]
pub struct ConnControl {
    reset_on_close: AtomicBool,
}

impl ConnControl {
    /// When the connection is closed, abort it with an RST (`SO_LINGER` 0) instead
    /// of a FIN.
    pub fn reset_on_close(&self) {
        self.reset_on_close.store(true, Ordering::SeqCst);
    }
}

/// What handlers learn about the connection a request came on (`ConnectInfo<Peer>`).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The connection's control.
    pub conn: Arc<ConnControl>,
}

/// Accepts TCP connections with `TCP_NODELAY` set and a [`ConnControl`] each.
#[derive(Debug)]
pub struct Listener(pub TcpListener);

/// An accepted connection.
#[derive(Debug)]
pub struct ConnIo {
    stream: TcpStream,
    control: Arc<ConnControl>,
}

impl axum::serve::Listener for Listener {
    type Io = ConnIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ConnIo, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        // Without TCP_NODELAY a response whose headers and body go out in separate
        // writes waits for the client's delayed ACK (40 ms on Linux): Nagle's
        // algorithm would add latency no real registry has.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
        let control = Arc::new(ConnControl::default());
        (ConnIo { stream, control }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            conn: stream.io().control.clone(),
        }
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.control.reset_on_close.load(Ordering::SeqCst)
            && let Err(e) = self.stream.set_zero_linger()
        {
            tracing::warn!("SO_LINGER 0 for a reset: {e}");
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A connection to be reset must not send a FIN first.
        if self.control.reset_on_close.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
