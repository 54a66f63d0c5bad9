//! The spoke's side of the ask channel: requests that the runtime sends to the hub on the Asks
//! stream, each matched with the hub's answer by its id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bulkhead_proto::v1::ask_answer::Answer;
use bulkhead_proto::v1::spoke_ask::Ask;
use bulkhead_proto::v1::{AskAnswer, SpokeAsk};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// The wait for the hub's answer when the start request sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Asks that may wait for the hub to read them. The hub reads at once, so a full queue means the
/// hub has not opened the stream.
const QUEUE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the hub has not opened the ask channel; retry after the app has started")]
    NotOpen,
    #[error("the hub closed the ask channel before it answered")]
    Closed,
    #[error("the hub did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the hub sent an answer without a body; the spoke runtime and the hub are of different versions")]
    EmptyAnswer,
}

/// The asks in flight and the queue of asks that the hub's Asks stream reads.
pub struct Asks {
    next_id: AtomicU64,
    timeout: Duration,
    pending: Mutex<HashMap<u64, oneshot::Sender<Option<Answer>>>>,
    outgoing: mpsc::Sender<Result<SpokeAsk, Status>>,
    /// The queue's receiving end, until the hub opens the stream.
    stream: Mutex<Option<mpsc::Receiver<Result<SpokeAsk, Status>>>>,
}

impl Asks {
    /// Creates the channel state. `timeout_ms` of 0 selects the default wait of 120 s.
    pub fn new(timeout_ms: u64) -> Asks {
        let (outgoing, stream) = mpsc::channel(QUEUE);
        let timeout = if timeout_ms == 0 { DEFAULT_TIMEOUT } else { Duration::from_millis(timeout_ms) };
        Asks {
            next_id: AtomicU64::new(1),
            timeout,
            pending: Mutex::new(HashMap::new()),
            outgoing,
            stream: Mutex::new(Some(stream)),
        }
    }

    /// Takes the stream of asks for the hub. Only the first call gets it.
    pub fn take_stream(&self) -> Option<mpsc::Receiver<Result<SpokeAsk, Status>>> {
        self.stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Sends one ask to the hub and waits for its answer, at most the channel's timeout.
    pub async fn ask(&self, ask: Ask) -> Result<Answer, AskError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer_rx) = oneshot::channel();
        self.pending_map().insert(id, answer_tx);
        let message = SpokeAsk { id, ask: Some(ask) };
        if let Err(error) = self.outgoing.try_send(Ok(message)) {
            self.pending_map().remove(&id);
            return Err(match error {
                mpsc::error::TrySendError::Full(_) => AskError::NotOpen,
                mpsc::error::TrySendError::Closed(_) => AskError::Closed,
            });
        }
        let waited = tokio::time::timeout(self.timeout, answer_rx).await;
        self.pending_map().remove(&id);
        match waited {
            Ok(Ok(Some(answer))) => Ok(answer),
            Ok(Ok(None)) => Err(AskError::EmptyAnswer),
            Ok(Err(_)) => Err(AskError::Closed),
            Err(_) => Err(AskError::Timeout(self.timeout)),
        }
    }

    /// Hands one answer from the hub to the ask that waits for it.
    pub fn deliver(&self, answer: AskAnswer) {
        let Some(waiter) = self.pending_map().remove(&answer.id) else {
            tracing::warn!(id = answer.id, "dropped the hub's answer to an ask that timed out or never existed");
            return;
        };
        // The asker may time out between the removal and the send, and then no task reads it.
        let _ = waiter.send(answer.answer);
    }

    /// Fails every ask in flight, because the hub closed its side of the stream.
    pub fn close(&self) {
        self.pending_map().clear();
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Option<Answer>>>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_proto::v1::{SamplingAnswer, SamplingAsk};

    fn sampling() -> Ask {
        Ask::Sampling(SamplingAsk::default())
    }

    #[tokio::test]
    async fn answer_reaches_its_ask() {
        let asks = std::sync::Arc::new(Asks::new(5_000));
        let mut stream = asks.take_stream().expect("first take");
        assert!(asks.take_stream().is_none());
        let asker = asks.clone();
        let waiting = tokio::spawn(async move { asker.ask(sampling()).await });
        let sent = stream.recv().await.expect("an ask").expect("not an error");
        let answer = Answer::Sampling(SamplingAnswer { text: "hi".into(), model: "m".into() });
        asks.deliver(AskAnswer { id: sent.id, answer: Some(answer.clone()) });
        let received = waiting.await.expect("task").expect("answered");
        assert_eq!(received, answer);
    }

    #[tokio::test]
    async fn unanswered_ask_times_out() {
        let asks = Asks::new(50);
        let _stream = asks.take_stream();
        let error = asks.ask(sampling()).await.expect_err("no answer");
        assert!(matches!(error, AskError::Timeout(_)), "{error}");
        assert!(asks.pending_map().is_empty());
    }

    #[tokio::test]
    async fn closed_channel_fails_the_ask() {
        let asks = std::sync::Arc::new(Asks::new(5_000));
        let mut stream = asks.take_stream().expect("first take");
        let asker = asks.clone();
        let waiting = tokio::spawn(async move { asker.ask(sampling()).await });
        let _ = stream.recv().await;
        asks.close();
        let error = waiting.await.expect("task").expect_err("closed");
        assert!(matches!(error, AskError::Closed), "{error}");
    }
}
