//! Byte counters for egress connections, and a stream wrapper that feeds them as data moves, so
//! that `bulkhead spokes` shows the bytes of connections that are still open.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One spoke's egress counters since it started.
#[derive(Debug, Default)]
pub struct EgressStats {
    open: AtomicU32,
    rejecting: AtomicU32,
    connections: AtomicU64,
    refused: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A copy of [`EgressStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressSnapshot {
    /// Connections open now, counted from the moment the hub receives them.
    pub open: u32,
    /// Connections that passed every check and were dialed.
    pub connections: u64,
    /// Requests the proxy refused or could not serve.
    pub refused: u64,
    /// Bytes from the app to the servers it reached.
    pub bytes_sent: u64,
    /// Bytes from those servers to the app.
    pub bytes_received: u64,
}

impl EgressStats {
    pub fn snapshot(&self) -> EgressSnapshot {
        EgressSnapshot {
            open: self.open.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection as open unless `max` are open already. The returned guard counts it
    /// closed when dropped.
    pub fn try_open(self: &Arc<Self>, max: u32) -> Option<SlotGuard> {
        SlotGuard::take(self, |stats| &stats.open, max)
    }

    /// Counts a connection as waiting for its over-limit response unless `max` already wait.
    pub fn try_reject(self: &Arc<Self>, max: u32) -> Option<SlotGuard> {
        SlotGuard::take(self, |stats| &stats.rejecting, max)
    }

    pub fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds bytes the hub sent upstream on the app's behalf outside the relay.
    pub fn count_sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// One taken slot of a bounded counter in [`EgressStats`], given back when dropped.
pub struct SlotGuard {
    stats: Arc<EgressStats>,
    counter: fn(&EgressStats) -> &AtomicU32,
}

impl SlotGuard {
    fn take(stats: &Arc<EgressStats>, counter: fn(&EgressStats) -> &AtomicU32, max: u32) -> Option<SlotGuard> {
        let taken = counter(stats)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| (count < max).then_some(count + 1))
            .is_ok();
        taken.then(|| SlotGuard { stats: Arc::clone(stats), counter })
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        (self.counter)(&self.stats).fetch_sub(1, Ordering::AcqRel);
    }
}

/// The direction of the bytes that a [`Counted`] stream reads.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Reads from the app, sent upstream.
    Sent,
    /// Reads from the server, sent to the app.
    Received,
}

/// A stream whose reads are added to one connection's counter and to the spoke's totals.
pub struct Counted<S> {
    inner: S,
    direction: Direction,
    connection: Arc<AtomicU64>,
    totals: Arc<EgressStats>,
}

impl<S> Counted<S> {
    pub fn new(inner: S, direction: Direction, connection: Arc<AtomicU64>, totals: Arc<EgressStats>) -> Counted<S> {
        Counted { inner, direction, connection, totals }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let count = u64::try_from(buf.filled().len() - before).unwrap_or(u64::MAX);
        if count > 0 {
            this.connection.fetch_add(count, Ordering::Relaxed);
            let total = match this.direction {
                Direction::Sent => &this.totals.bytes_sent,
                Direction::Received => &this.totals.bytes_received,
            };
            total.fetch_add(count, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
