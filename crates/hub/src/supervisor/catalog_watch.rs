//! Following a running spoke's WatchCatalog stream, so that a tools/list_changed notification
//! from the app reaches the pins while the spoke runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_proto::v1::WatchCatalogRequest;

use super::slot::{RunningSpoke, Slot};
use crate::catalog::{CatalogError, Catalogs, Trigger};

/// How long a broken stream waits for the spoke's exit before the hub treats the break as a
/// failure to list the app's changed tools.
const EXIT_WAIT: Duration = Duration::from_millis(500);

/// Hands every catalog the spoke streams to the pins, until the spoke exits. The stream may break
/// while the spoke still runs, or the app may announce a catalog that cannot be pinned. Then the
/// hub cannot tell what the app offers, so it kills the spoke and the next start checks again.
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
                match catalogs.observe(&app, &update.tools, Trigger::ListChanged).await {
                    Ok(()) => {}
                    Err(error @ CatalogError::InvalidCatalog { .. }) => {
                        tracing::warn!(app = %app, "killing the spoke because of its changed catalog: {error}");
                        slot.kill(&spoke).await;
                        return;
                    }
                    // A quarantine applies even when it cannot be recorded or stored.
                    Err(error) => tracing::error!(app = %app, "cannot record the app's changed catalog: {error}"),
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
