//! Following a running spoke's WatchCatalog stream, so that a tools/list_changed notification
//! from the app reaches the pins while the spoke runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_proto::v1::WatchCatalogRequest;

use super::slot::{RunningSpoke, Slot};
use crate::catalog::{Catalogs, Trigger};

/// How long a broken stream waits for the spoke's exit before the hub treats the break as a
/// failure to list the app's changed tools.
const EXIT_WAIT: Duration = Duration::from_millis(500);

/// Hands every catalog the spoke streams to the pins, until the spoke exits. When the stream
/// breaks while the spoke still runs, the app announced a change that the hub could not read,
/// so the spoke is killed and the next start checks the catalog again.
pub async fn follow(slot: Arc<Slot>, spoke: Arc<RunningSpoke>, catalogs: Arc<Catalogs>) {
    let app = slot.app().to_string();
    let mut client = spoke.client.clone();
    let mut updates = match client.watch_catalog(WatchCatalogRequest {}).await {
        Ok(response) => response.into_inner(),
        Err(status) => return broken(&slot, &spoke, &format!("cannot open the catalog stream: {}", status.message())).await,
    };
    loop {
        match updates.message().await {
            Ok(Some(update)) => {
                tracing::info!(app = %app, generation = update.generation, tools = update.tools.len(), "the app changed its tool list");
                if let Err(error) = catalogs.observe(&app, &update.tools, Trigger::ListChanged).await {
                    tracing::error!(app = %app, "cannot check the app's changed catalog: {error}");
                }
            }
            Ok(None) => return,
            Err(status) => return broken(&slot, &spoke, status.message()).await,
        }
    }
}

async fn broken(slot: &Slot, spoke: &Arc<RunningSpoke>, reason: &str) {
    if spoke.stopping.load(Ordering::Acquire) || spoke.wait_exit(EXIT_WAIT).await.is_some() {
        return;
    }
    tracing::warn!(app = %slot.app(), "killing the spoke because its catalog stream broke while it runs: {reason}");
    slot.kill(spoke).await;
}
