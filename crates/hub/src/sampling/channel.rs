//! The hub's side of a spoke's ask channel: it opens the Asks stream and answers every ask.

use std::sync::Arc;

use bulkhead_proto::v1::AskAnswer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Sampler;
use crate::supervisor::SpokeClient;

/// Answers that may wait for the spoke to read them.
const ANSWER_QUEUE: usize = 16;

/// Opens `app`'s ask channel and answers each ask in its own task, until the spoke exits or closes
/// the stream. A broken channel fails only the asks, so the spoke keeps serving tool calls.
pub async fn follow(app: String, mut client: SpokeClient, sampler: Arc<Sampler>) {
    let (answers, outgoing) = mpsc::channel::<AskAnswer>(ANSWER_QUEUE);
    let mut asks = match client.asks(ReceiverStream::new(outgoing)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            tracing::warn!(app = %app, "cannot open the ask channel; the app's sampling requests will fail: {}", status.message());
            return;
        }
    };
    loop {
        match asks.message().await {
            Ok(Some(ask)) => {
                let sampler = sampler.clone();
                let answers = answers.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let answer = sampler.answer(&app, ask).await;
                    // The spoke may have exited meanwhile, and then nobody waits for the answer.
                    let _ = answers.send(answer).await;
                });
            }
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(app = %app, "the ask channel closed: {}", status.message());
                return;
            }
        }
    }
}
